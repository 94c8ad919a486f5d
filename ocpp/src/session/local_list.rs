//! The local authorisation list (SendLocalList / GetLocalListVersion).

use std::collections::BTreeMap;

use rust_ocpp::v1_6::types::{
    AuthorizationData, AuthorizationStatus, IdTagInfo, UpdateStatus, UpdateType,
};

use crate::config_keys::{LOCAL_AUTH_LIST_MAX_LENGTH, SEND_LOCAL_LIST_MAX_LENGTH};

/// The list with its version (0: none installed).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalList {
    pub version: i32,
    entries: BTreeMap<String, IdTagInfo>,
}

impl LocalList {
    /// A persisted list.
    #[must_use]
    pub fn restore(version: i32, entries: Vec<AuthorizationData>) -> Self {
        let mut list = Self {
            version,
            entries: BTreeMap::new(),
        };
        for entry in entries.into_iter().take(LOCAL_AUTH_LIST_MAX_LENGTH) {
            if let Some(info) = entry.id_tag_info {
                list.entries.insert(entry.id_tag, info);
            }
        }
        list
    }

    #[must_use]
    pub fn entries(&self) -> Vec<AuthorizationData> {
        self.entries
            .iter()
            .map(|(id_tag, info)| AuthorizationData {
                id_tag: id_tag.clone(),
                id_tag_info: Some(info.clone()),
            })
            .collect()
    }

    /// Whether `id_tag` is on the list as Accepted.
    #[must_use]
    pub fn accepts(&self, id_tag: &str) -> bool {
        self.entries
            .get(id_tag)
            .is_some_and(|info| info.status == AuthorizationStatus::Accepted)
    }

    /// SendLocalList. A differential update must carry a newer version; entries without
    /// `idTagInfo` are removed by it.
    pub fn update(
        &mut self,
        version: i32,
        update_type: &UpdateType,
        list: Option<Vec<AuthorizationData>>,
    ) -> UpdateStatus {
        let list = list.unwrap_or_default();
        if list.len() > SEND_LOCAL_LIST_MAX_LENGTH || version < 0 {
            return UpdateStatus::Failed;
        }
        let mut next = match update_type {
            UpdateType::Full => BTreeMap::new(),
            UpdateType::Differential if version <= self.version => {
                return UpdateStatus::VersionMismatch
            }
            UpdateType::Differential => self.entries.clone(),
        };
        for entry in list {
            if entry.id_tag.is_empty() || entry.id_tag.len() > 20 {
                return UpdateStatus::Failed;
            }
            match entry.id_tag_info {
                Some(info) => {
                    next.insert(entry.id_tag, info);
                }
                None => {
                    next.remove(&entry.id_tag);
                }
            }
        }
        if next.len() > LOCAL_AUTH_LIST_MAX_LENGTH {
            return UpdateStatus::Failed;
        }
        self.entries = next;
        self.version = version;
        UpdateStatus::Accepted
    }
}
