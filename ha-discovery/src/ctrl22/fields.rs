//! The JSON fields of the state payloads and the command names (the last topic level of
//! `.../set/<command>`): the contract between the bridge and the entities' templates.

macro_rules! field_names {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),+ }
            }

            #[must_use]
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|f| f.as_str() == s)
            }
        }
    };
}

field_names!(
    /// JSON fields of the bay state payload (see the module docs for types and meaning).
    BayField {
        State = "state",
        CurrentL1A = "current_l1_a",
        CurrentL2A = "current_l2_a",
        CurrentL3A = "current_l3_a",
        PowerW = "power_w",
        SessionEnergyKwh = "session_energy_kwh",
        TotalEnergyKwh = "total_energy_kwh",
        AllocatedCurrentA = "allocated_current_a",
        CableCapacityA = "cable_capacity_a",
        Plugged = "plugged",
        Charging = "charging",
        Problem = "problem",
        Online = "online",
        Mode = "mode",
        MaxCurrentA = "max_current_a",
        Enabled = "enabled",
        DepartureTime = "departure_time",
        TargetEnergyKwh = "target_energy_kwh",
        RssiDbm = "rssi_dbm",
        MeshLayer = "mesh_layer",
        MeshParent = "mesh_parent",
        FwVersion = "fw_version",
        FwLatest = "fw_latest",
        FwUpdateInProgress = "fw_update_in_progress",
        FwUpdatePercent = "fw_update_percent",
        FwReleaseSummary = "fw_release_summary",
        AvrVersion = "avr_version",
        AvrLatest = "avr_latest",
        AvrUpdateInProgress = "avr_update_in_progress",
        AvrUpdatePercent = "avr_update_percent",
        AvrReleaseSummary = "avr_release_summary",
        Ccss = "ccss",
    }
);

field_names!(
    /// Commands to a bay: `ctrl22/<site>/node/<dev>/set/<field>`.
    BayCommand {
        Mode = "mode",
        MaxCurrentA = "max_current_a",
        Enabled = "enabled",
        Start = "start",
        Stop = "stop",
        DepartureTime = "departure_time",
        TargetEnergyKwh = "target_energy_kwh",
        InstallAvr = "install_avr",
        InstallEsp32 = "install_esp32",
    }
);

field_names!(
    /// JSON fields of the site state payload (see the module docs for types and meaning).
    SiteField {
        GridPowerW = "grid_power_w",
        PvPowerW = "pv_power_w",
        SurplusW = "surplus_w",
        EvPowerW = "ev_power_w",
        CurrentL1A = "current_l1_a",
        CurrentL2A = "current_l2_a",
        CurrentL3A = "current_l3_a",
        LimitL1A = "limit_l1_a",
        LimitL2A = "limit_l2_a",
        LimitL3A = "limit_l3_a",
        Strategy = "strategy",
        SolarOk = "solar_ok",
        EvEnergyKwh = "ev_energy_kwh",
        BatteryPowerW = "battery_power_w",
        BatterySocPct = "battery_soc_pct",
        BudgetW = "budget_w",
        HouseLoadL1A = "house_load_l1_a",
        HouseLoadL2A = "house_load_l2_a",
        HouseLoadL3A = "house_load_l3_a",
        HouseFallback = "house_fallback",
        ExternalLimitW = "external_limit_w",
    }
);

field_names!(
    /// Commands to the site: `ctrl22/<site>/site/set/<field>`.
    SiteCommand {
        LimitL1A = "limit_l1_a",
        LimitL2A = "limit_l2_a",
        LimitL3A = "limit_l3_a",
        Strategy = "strategy",
    }
);
