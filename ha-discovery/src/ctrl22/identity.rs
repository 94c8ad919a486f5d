//! Who the entities belong to: device identifiers, the origin, and entity-id proposals
//! made from names the way Home Assistant makes them.

use super::site::SiteInfo;
use crate::device::Origin;

pub(super) const MANUFACTURER: &str = "CTRL22";
pub(super) const ORIGIN_NAME: &str = "ctrl22-bridge";

/// Entity-id form of a name, as Home Assistant's `slugify` makes it for Latin text: lower
/// case, common accented letters folded, every other run of characters one `_`.
#[must_use]
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_sep = false;
    for ch in name.chars().flat_map(char::to_lowercase) {
        let folded: &str = match ch {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
            'æ' => "ae",
            'ç' => "c",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'ý' | 'ÿ' => "y",
            'ß' => "ss",
            c if c.is_ascii_alphanumeric() => {
                if pending_sep && !out.is_empty() {
                    out.push('_');
                }
                pending_sep = false;
                out.push(c);
                continue;
            }
            _ => {
                pending_sep = true;
                continue;
            }
        };
        if pending_sep && !out.is_empty() {
            out.push('_');
        }
        pending_sep = false;
        out.push_str(folded);
    }
    out
}

pub(super) fn origin(site: &SiteInfo) -> Origin {
    Origin {
        name: ORIGIN_NAME.to_owned(),
        sw_version: Some(site.bridge_version.clone()),
        support_url: None,
    }
}

/// The site device's identifier, which every bay names as `via_device`.
#[must_use]
pub fn site_device_id(site_id: &str) -> String {
    format!("ctrl22_site_{site_id}")
}

/// The bay device's identifier.
#[must_use]
pub fn bay_device_id(dev: &str) -> String {
    format!("ctrl22_{dev}")
}

/// The entity-id base of a name, or `fallback` when the name has no letters or digits.
pub(super) fn entity_base(name: &str, fallback: &str) -> String {
    let s = slug(name);
    if s.is_empty() {
        fallback.to_owned()
    } else {
        s
    }
}
