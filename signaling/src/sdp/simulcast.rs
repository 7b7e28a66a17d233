//! Simulcast offers (RFC 8853 `a=simulcast`, RFC 8851 `a=rid`): which encodings a publisher's
//! media section sends, which of them Ringcast accepts, and in what order they rank from the
//! lowest to the highest.
//!
//! Ordering rule: when every rid of a section belongs to one well-known naming ladder (`q` < `h`
//! < `f`, `l` < `m` < `h`, `low` < `mid` < `high`, `lo` < `mid` < `hi`, `quarter` < `half` <
//! `full`, `s` < `m` < `l`, matched without regard to case) the layers are ranked by it, and the
//! order is final. Otherwise (OBS and other encoders name their encodings as they please; digits
//! are ambiguous) the order of `a=simulcast` is taken as lowest first for a start, and the media
//! plane ranks the encodings by their measured bit rates once each has sent for a few seconds.

use sfu::Rid;
use sfu::control::{LayerOrder, MAX_SIMULCAST_LAYERS};

use super::error::SdpError;
use super::offered_media::{OfferedMedia, RidDirection};

/// One direction of an `a=simulcast` line: streams in order, each a list of alternative rids
/// (the first is preferred), `~` (paused) stripped.
pub type SimulcastStreams = Vec<Vec<String>>;

/// The parsed `a=simulcast` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulcastAttribute {
    pub send: SimulcastStreams,
    pub recv: SimulcastStreams,
}

/// Parses `send <list> [recv <list>]` (either order, RFC 8853 §5.1).
pub fn parse_simulcast(value: &str) -> Result<SimulcastAttribute, SdpError> {
    let bad = || SdpError::invalid("simulcast", value);
    let mut out = SimulcastAttribute::default();
    let mut tokens = value.split_whitespace();
    let mut seen = [false; 2];
    while let Some(dir) = tokens.next() {
        let (slot, i) = match dir {
            "send" => (&mut out.send, 0),
            "recv" => (&mut out.recv, 1),
            _ => return Err(bad()),
        };
        if std::mem::replace(&mut seen[i], true) {
            return Err(bad());
        }
        let list = tokens.next().ok_or_else(bad)?;
        for stream in list.split(';') {
            let mut alternatives = Vec::new();
            for alt in stream.split(',') {
                let id = alt.strip_prefix('~').unwrap_or(alt);
                if !is_rid_token(id) {
                    return Err(bad());
                }
                alternatives.push(id.to_owned());
            }
            slot.push(alternatives);
        }
    }
    if !seen[0] && !seen[1] {
        return Err(bad());
    }
    Ok(out)
}

/// RFC 8851 §10 `rid-id`: 1 to 255 characters of `A-Z a-z 0-9 - _`.
fn is_rid_token(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The encodings Ringcast receives from a publisher's media section, in the offer's order: per
/// `a=simulcast` send stream, the first alternative with an `a=rid:<id> send` line; at most
/// [`MAX_SIMULCAST_LAYERS`]. Empty when the section does not offer simulcast (or offers one
/// encoding), or the offer's `a=simulcast` is malformed.
pub fn offered_layers(om: &OfferedMedia) -> Vec<Rid> {
    let Some(sim) = om
        .simulcast
        .as_deref()
        .and_then(|v| parse_simulcast(v).ok())
    else {
        return Vec::new();
    };
    let sends = |id: &str| {
        om.rids
            .iter()
            .any(|(r, d)| r.0 == id && *d == RidDirection::Send)
    };
    let mut layers: Vec<Rid> = Vec::new();
    for stream in &sim.send {
        if let Some(id) = stream.iter().find(|id| sends(id))
            && !layers.iter().any(|r| r.0 == *id)
            && layers.len() < MAX_SIMULCAST_LAYERS
        {
            layers.push(Rid(id.clone()));
        }
    }
    if layers.len() < 2 {
        layers.clear();
    }
    layers
}

/// Naming ladders, lowest first.
const LADDERS: &[&[&str]] = &[
    &["q", "h", "f"],
    &["l", "m", "h"],
    &["low", "mid", "high"],
    &["low", "medium", "high"],
    &["lo", "mid", "hi"],
    &["quarter", "half", "full"],
    &["s", "m", "l"],
];

/// Ranks `rids` lowest first by the module's rule.
pub fn order_layers(rids: &[Rid]) -> (Vec<Rid>, LayerOrder) {
    for ladder in LADDERS {
        let rank = |r: &Rid| ladder.iter().position(|n| n.eq_ignore_ascii_case(&r.0));
        if rids.iter().all(|r| rank(r).is_some()) {
            let mut ordered = rids.to_vec();
            ordered.sort_by_key(|r| rank(r));
            return (ordered, LayerOrder::Named);
        }
    }
    (rids.to_vec(), LayerOrder::Measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rids(v: &[&str]) -> Vec<Rid> {
        v.iter().map(|r| Rid((*r).into())).collect()
    }

    #[test]
    fn simulcast_attribute_reads_streams_alternatives_and_paused() {
        let a = parse_simulcast("send 1;~2,3;4 recv c").expect("valid");
        assert_eq!(
            a.send,
            vec![
                vec!["1".to_owned()],
                vec!["2".into(), "3".into()],
                vec!["4".into()]
            ]
        );
        assert_eq!(a.recv, vec![vec!["c".to_owned()]]);
        for bad in [
            "",
            "send",
            "both a;b",
            "send a;;b",
            "send a send b",
            "send a b",
        ] {
            assert!(parse_simulcast(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn named_ladders_order_lowest_first() {
        assert_eq!(
            order_layers(&rids(&["f", "h", "q"])),
            (rids(&["q", "h", "f"]), LayerOrder::Named)
        );
        assert_eq!(
            order_layers(&rids(&["high", "low"])),
            (rids(&["low", "high"]), LayerOrder::Named)
        );
        assert_eq!(
            order_layers(&rids(&["H", "L", "M"])),
            (rids(&["L", "M", "H"]), LayerOrder::Named)
        );
    }

    #[test]
    fn unknown_names_keep_the_offer_order_and_are_measured() {
        assert_eq!(
            order_layers(&rids(&["2", "1", "0"])),
            (rids(&["2", "1", "0"]), LayerOrder::Measured)
        );
        assert_eq!(
            order_layers(&rids(&["q", "x"])),
            (rids(&["q", "x"]), LayerOrder::Measured)
        );
    }
}
