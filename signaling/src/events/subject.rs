//! NATS subject matching: dot-separated tokens, `*` matches one token, a final `>` one or more.

/// Whether `subject` (no wildcards) matches `pattern`.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether `subject` is a valid publish subject: non-empty tokens, no wildcards or spaces.
pub(crate) fn is_valid_publish_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|t| {
            !t.is_empty() && t != "*" && t != ">" && !t.bytes().any(|b| b.is_ascii_whitespace())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_tokens_not_characters() {
        assert!(subject_matches("stream.started", "stream.started"));
        assert!(subject_matches("stream.*", "stream.started"));
        assert!(!subject_matches("stream.*", "stream.viewer.joined"));
        assert!(subject_matches("stream.>", "stream.viewer.joined"));
        assert!(!subject_matches("stream.>", "stream"));
        assert!(!subject_matches("stream.start", "stream.started"));
        assert!(subject_matches("*.session.ended", "voice.session.ended"));
    }

    #[test]
    fn publish_subjects_have_no_wildcards_or_empty_tokens() {
        assert!(is_valid_publish_subject("stream.started"));
        assert!(!is_valid_publish_subject("stream.*"));
        assert!(!is_valid_publish_subject("stream..x"));
        assert!(!is_valid_publish_subject(""));
        assert!(!is_valid_publish_subject("a b"));
    }
}
