//! Building the entities of one device: each reads one field of the device's state topic and
//! writes one command topic.

use crate::classes::{BinarySensorClass, NumberKind, SensorKind};
use crate::component::{
    BinarySensor, Button, Component, Number, NumberMode, NumberRange, Select, Sensor, Switch, Text,
};

/// The three phases as keys and labels (`current_l1`, "Current L1").
pub(super) const PHASES: [(&str, &str); 3] = [("l1", "L1"), ("l2", "L2"), ("l3", "L3")];

pub(super) fn value_of(field: &str) -> Option<String> {
    Some(format!("{{{{ value_json.{field} }}}}"))
}

/// JSON booleans onto Home Assistant's default `ON` / `OFF` payloads.
pub(super) fn on_off_of(field: &str) -> Option<String> {
    Some(format!("{{{{ 'ON' if value_json.{field} else 'OFF' }}}}"))
}

/// Builds the entities of one device, all reading one state topic; `command_topic` maps a
/// command onto its topic.
pub(super) struct Builder<'a, C> {
    pub(super) state_topic: String,
    pub(super) command_topic: &'a dyn Fn(C) -> String,
}

impl<C> Builder<'_, C> {
    pub(super) fn sensor(
        &self,
        key: &str,
        name: &str,
        field: &str,
        kind: SensorKind,
        precision: Option<u8>,
    ) -> Component {
        Component::new(
            key,
            name,
            Sensor {
                state_topic: self.state_topic.clone(),
                value_template: value_of(field),
                kind,
                suggested_display_precision: precision,
            },
        )
    }

    pub(super) fn binary(
        &self,
        key: &str,
        name: &str,
        field: &str,
        class: Option<BinarySensorClass>,
    ) -> Component {
        Component::new(
            key,
            name,
            BinarySensor {
                state_topic: self.state_topic.clone(),
                value_template: on_off_of(field),
                device_class: class,
            },
        )
    }

    pub(super) fn number(
        &self,
        (key, name): (&str, &str),
        (field, command): (&str, C),
        kind: NumberKind,
        range: NumberRange,
    ) -> Component {
        Component::new(
            key,
            name,
            Number {
                command_topic: (self.command_topic)(command),
                state_topic: Some(self.state_topic.clone()),
                value_template: value_of(field),
                kind,
                range,
                mode: NumberMode::Box,
            },
        )
    }

    pub(super) fn select(
        &self,
        (key, name): (&str, &str),
        (field, command): (&str, C),
        options: &[&str],
    ) -> Component {
        Component::new(
            key,
            name,
            Select {
                command_topic: (self.command_topic)(command),
                state_topic: Some(self.state_topic.clone()),
                value_template: value_of(field),
                options: options.iter().map(|o| (*o).to_owned()).collect(),
            },
        )
    }

    pub(super) fn switch(
        &self,
        (key, name): (&str, &str),
        (field, command): (&str, C),
    ) -> Component {
        Component::new(
            key,
            name,
            Switch {
                command_topic: (self.command_topic)(command),
                state_topic: Some(self.state_topic.clone()),
                value_template: on_off_of(field),
            },
        )
    }

    pub(super) fn text(
        &self,
        (key, name): (&str, &str),
        (field, command): (&str, C),
        max_len: u8,
        pattern: &str,
    ) -> Component {
        Component::new(
            key,
            name,
            Text {
                command_topic: (self.command_topic)(command),
                state_topic: Some(self.state_topic.clone()),
                value_template: value_of(field),
                min: 0,
                max: max_len,
                pattern: Some(pattern.to_owned()),
            },
        )
    }

    pub(super) fn button(&self, key: &str, name: &str, command: C) -> Component {
        Component::new(
            key,
            name,
            Button {
                command_topic: (self.command_topic)(command),
                payload_press: None,
                device_class: None,
            },
        )
    }
}
