//! Validated names: mission slugs, `NNN-slug` directory names, work package ids.
//!
//! Every name that becomes a path segment is checked here first, so `..`, `/` and friends never
//! reach a `join`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::MissionError;

const SLUG_RULE: &str =
    "lowercase kebab-case: a-z and 0-9 in words joined by single hyphens, e.g. `my-mission`";

fn is_kebab(value: &str) -> bool {
    !value.is_empty()
        && value.split('-').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Check a mission slug (`^[a-z0-9]+(-[a-z0-9]+)*$`). Such a slug cannot contain a path
/// separator, `..`, or be empty.
pub fn validate_slug(value: &str) -> Result<(), MissionError> {
    if is_kebab(value) {
        Ok(())
    } else {
        Err(MissionError::InvalidSlug {
            value: value.to_owned(),
            reason: SLUG_RULE.to_owned(),
        })
    }
}

/// The mission types upstream registers (`src/specify_cli/missions/<type>/mission.yaml`).
pub const MISSION_TYPES: [&str; 4] = ["documentation", "plan", "research", "software-dev"];

/// Check a mission type: one of [`MISSION_TYPES`].
pub fn validate_mission_type(value: &str) -> Result<(), MissionError> {
    if MISSION_TYPES.contains(&value) {
        Ok(())
    } else {
        Err(MissionError::InvalidMissionType {
            value: value.to_owned(),
        })
    }
}

/// Whether `value` can be used as one path segment under `kitty-specs/`: non-empty, no path
/// separators, no `..`, not hidden, no control characters, at most 255 bytes.
pub fn is_safe_segment(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 255
        && !value.starts_with('.')
        && !value.contains("..")
        && !value
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// The numeric prefix of a `NNN-…` directory name (any number of digits), if it has one.
pub fn number_prefix(name: &str) -> Option<u64> {
    let (digits, _) = name.split_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A mission directory name `NNN-slug`: at least three digits, a hyphen, a kebab-case slug.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MissionDirName {
    name: String,
    number: u64,
}

impl MissionDirName {
    /// Parse and validate a directory name such as `099-orchestrator-e2e`.
    pub fn parse(value: &str) -> Result<Self, MissionError> {
        let invalid = |reason: &str| MissionError::InvalidMissionDir {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let (digits, slug) = value
            .split_once('-')
            .ok_or_else(|| invalid("expected `NNN-slug`, e.g. `001-my-mission`"))?;
        if digits.len() < 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "must start with a number of at least three digits, e.g. `001-`",
            ));
        }
        if !is_kebab(slug) {
            return Err(invalid(&format!(
                "the part after the number must be {SLUG_RULE}"
            )));
        }
        let number = digits
            .parse()
            .map_err(|_| invalid("the mission number is too large"))?;
        Ok(Self {
            name: value.to_owned(),
            number,
        })
    }

    /// Build `NNN-slug` from a number (zero-padded to three digits) and a validated slug.
    pub fn compose(number: u64, slug: &str) -> Result<Self, MissionError> {
        validate_slug(slug)?;
        Self::parse(&format!("{number:03}-{slug}"))
    }

    /// The whole name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The mission number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The slug after `NNN-`.
    pub fn slug(&self) -> &str {
        self.name.split_once('-').map_or("", |(_, s)| s)
    }
}

impl fmt::Display for MissionDirName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A work package id: `WP` followed by at least two digits (`WP01`, `WP123`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WpId(String);

impl WpId {
    /// Parse and validate a work package id.
    pub fn parse(value: &str) -> Result<Self, MissionError> {
        let valid = value
            .strip_prefix("WP")
            .is_some_and(|digits| digits.len() >= 2 && digits.bytes().all(|b| b.is_ascii_digit()));
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(MissionError::InvalidWpId {
                value: value.to_owned(),
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id at the start of a WP file name: `WP01.md` and `WP01-anything.md` give `WP01`.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".md")?;
        let id = stem.split_once('-').map_or(stem, |(id, _)| id);
        Self::parse(id).ok()
    }
}

impl fmt::Display for WpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for WpId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for WpId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WpId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slugs() {
        for ok in ["a", "my-mission", "099", "a1-b2-c3"] {
            assert!(validate_slug(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-a", "a-", "a--b", "A", "a_b", "a/b", "..", "../x", "a b", "é",
        ] {
            let err = validate_slug(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn dir_names() {
        let d = MissionDirName::parse("099-orchestrator-e2e").unwrap();
        assert_eq!((d.number(), d.slug()), (99, "orchestrator-e2e"));
        assert_eq!(MissionDirName::compose(7, "x").unwrap().as_str(), "007-x");
        assert_eq!(
            MissionDirName::compose(1234, "x").unwrap().as_str(),
            "1234-x"
        );
        for bad in [
            "99-x", "abc-x", "001", "001-", "001-X", "001-../x", "../001-x",
        ] {
            assert!(MissionDirName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wp_ids() {
        for ok in ["WP01", "WP99", "WP100"] {
            assert_eq!(WpId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "WP1", "wp01", "WP01/..", "../WP01", "WP01-x", "WP", "WPab", " WP01", "",
        ] {
            let err = WpId::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert_eq!(
            WpId::from_file_name("WP01-deterministic-implementation.md")
                .unwrap()
                .as_str(),
            "WP01"
        );
        assert_eq!(WpId::from_file_name("WP02.md").unwrap().as_str(), "WP02");
        assert!(WpId::from_file_name("README.md").is_none());
        assert!(WpId::from_file_name("WP01.txt").is_none());
    }

    #[test]
    fn safe_segments() {
        for ok in ["099-x", "x-01KTPKST", "a.b"] {
            assert!(is_safe_segment(ok), "{ok}");
        }
        for bad in [
            "", ".", "..", "a/b", "a\\b", "../x", ".hidden", "a..b", "a\0b", "a\nb",
        ] {
            assert!(!is_safe_segment(bad), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn valid_slugs_are_safe_segments(s in "[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,4}") {
            prop_assert!(validate_slug(&s).is_ok());
            prop_assert!(is_safe_segment(&s));
        }

        #[test]
        fn anything_with_a_separator_is_rejected(a in "[a-z0-9.]{0,6}", b in "[a-z0-9.]{0,6}", sep in prop::sample::select(vec!["/", "\\", ".."])) {
            let s = format!("{a}{sep}{b}");
            prop_assert!(validate_slug(&s).is_err());
            prop_assert!(WpId::parse(&s).is_err());
            prop_assert!(!is_safe_segment(&s));
        }
    }
}
