//! Format parameters (`a=fmtp`, RFC 8866 §6.15) as `key=value;key=value` lists, and the H.264
//! `profile-level-id` (RFC 6184 §8.1).

/// Iterates the `key=value` pairs of an fmtp parameter string. A parameter without `=` (such as
/// RED's `111/111` or telephone-event's `0-15`) yields an empty value.
pub(crate) fn params(fmtp: &str) -> impl Iterator<Item = (&str, &str)> {
    fmtp.split(';').filter_map(|p| {
        let p = p.trim();
        if p.is_empty() {
            return None;
        }
        Some(match p.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (p, ""),
        })
    })
}

/// The value of the first parameter named `key` (matched case-insensitively, RFC 6184 §8.1).
pub(crate) fn get<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    params(fmtp)
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Whether `value` is 1 to `max_len` ASCII digits, so that it can be echoed into an answer.
pub(crate) fn is_small_number(value: &str, max_len: usize) -> bool {
    !value.is_empty() && value.len() <= max_len && value.bytes().all(|b| b.is_ascii_digit())
}

/// An H.264 `profile-level-id`: profile_idc, profile-iop (constraint flags) and level_idc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProfileLevelId {
    pub profile_idc: u8,
    pub profile_iop: u8,
    pub level_idc: u8,
}

impl ProfileLevelId {
    /// The default when the parameter is absent: Baseline, level 1.0 (RFC 6184 §8.1).
    pub const DEFAULT: ProfileLevelId = ProfileLevelId {
        profile_idc: 0x42,
        profile_iop: 0x00,
        level_idc: 0x0a,
    };

    /// Parses six hex digits.
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() != 6 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&value[i..i + 2], 16).ok();
        Some(ProfileLevelId {
            profile_idc: byte(0)?,
            profile_iop: byte(2)?,
            level_idc: byte(4)?,
        })
    }

    /// Whether this is the Constrained Baseline profile level 3.1 (`42e01f`), the one every WebRTC
    /// endpoint decodes.
    pub fn is_42e01f(self) -> bool {
        self == ProfileLevelId {
            profile_idc: 0x42,
            profile_iop: 0xe0,
            level_idc: 0x1f,
        }
    }
}

impl std::fmt::Display for ProfileLevelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02x}{:02x}{:02x}",
            self.profile_idc, self.profile_iop, self.level_idc
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_split_on_semicolons_and_keep_equals_inside_values() {
        let fmtp = "packetization-mode=1; sprop-parameter-sets=Z0LAH9kA==,aM48gA==;flag";
        let all: Vec<_> = params(fmtp).collect();
        assert_eq!(
            all,
            vec![
                ("packetization-mode", "1"),
                ("sprop-parameter-sets", "Z0LAH9kA==,aM48gA=="),
                ("flag", "")
            ]
        );
        assert_eq!(get(fmtp, "PACKETIZATION-MODE"), Some("1"));
        assert_eq!(get(fmtp, "profile-level-id"), None);
        assert_eq!(get("111/111", "apt"), None);
    }

    #[test]
    fn profile_level_id_parses_hex_and_recognises_constrained_baseline() {
        let p = ProfileLevelId::parse("42E01F").expect("six hex digits");
        assert!(p.is_42e01f());
        assert_eq!(p.to_string(), "42e01f");
        assert!(
            !ProfileLevelId::parse("640c1f")
                .expect("six hex digits")
                .is_42e01f()
        );
        assert_eq!(ProfileLevelId::parse("42e01"), None);
        assert_eq!(ProfileLevelId::parse("42e01g"), None);
        assert_eq!(ProfileLevelId::parse("é2e01f"), None);
    }

    #[test]
    fn small_numbers_are_bounded_digit_strings() {
        assert!(is_small_number("10", 3));
        assert!(!is_small_number("", 3));
        assert!(!is_small_number("1000", 3));
        assert!(!is_small_number("1x", 3));
    }
}
