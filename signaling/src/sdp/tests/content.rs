//! RFC 4796 `a=content`: a publisher's video line marked `slides` is screen content.

use sfu::control::TrackContent;

use super::support::*;
use crate::sdp::{Role, parse_offer};

/// The recorded Chromium publisher offer with `a=content:<value>` after its video `a=mid:1`.
fn with_content(value: &str) -> String {
    let offer = CHROME_SIMULCAST.replacen("a=mid:1\n", &format!("a=mid:1\na=content:{value}\n"), 1);
    assert_ne!(offer, CHROME_SIMULCAST, "the test data has a video a=mid:1");
    offer
}

#[test]
fn slides_content_makes_a_publishers_video_line_screen_content() {
    let a = answer(&with_content("slides"), Role::Publisher);
    assert_eq!(a.offer.media[1].content, vec!["slides".to_string()]);
    assert_eq!(a.neg.media[1].content, TrackContent::Screen);
    // Audio stays camera (the default) even when the video line is slides.
    assert_eq!(a.neg.media[0].content, TrackContent::Camera);
    assert_eq!(a.neg.media[1].rids.len(), 3, "simulcast is unaffected");
}

#[test]
fn content_tokens_are_a_case_insensitive_comma_list() {
    let offer = parse_offer(&with_content("main, SLIDES,main")).expect("parses");
    assert_eq!(offer.media[1].content, vec!["main", "slides"]);
    assert!(offer.media[1].is_slides());
    let a = answer(&with_content("main, SLIDES"), Role::Publisher);
    assert_eq!(a.neg.media[1].content, TrackContent::Screen);
}

#[test]
fn other_or_missing_content_is_camera() {
    for value in ["main", "speaker", "sl", "alt", "x-slides"] {
        let a = answer(&with_content(value), Role::Publisher);
        assert_eq!(a.neg.media[1].content, TrackContent::Camera, "{value}");
    }
    let plain = answer(CHROME_SIMULCAST, Role::Publisher);
    assert!(plain.offer.media[1].content.is_empty());
    assert_eq!(plain.neg.media[1].content, TrackContent::Camera);
}

#[test]
fn slides_on_a_viewers_line_does_not_matter() {
    let offer = CHROME_WHEP_VIEWER.replacen("a=mid:1\n", "a=mid:1\na=content:slides\n", 1);
    assert_ne!(offer, CHROME_WHEP_VIEWER);
    let a = answer(&offer, Role::Viewer);
    assert!(
        a.neg
            .media
            .iter()
            .all(|m| m.content == TrackContent::Camera)
    );
}

#[test]
fn the_stream_service_marks_its_published_video_as_screen() {
    let b = answer(CHROME_SIMULCAST, Role::Publisher);
    let mut spec = sfu::control::SessionSpec {
        id: sfu::SessionId(1),
        local_ice: local_ice(),
        remote_ice: b.neg.remote_ice.clone(),
        remote_fingerprint: b.neg.remote_fingerprint.clone(),
        extmap: b.neg.extmap,
        publish: b
            .neg
            .media
            .iter()
            .map(|m| sfu::control::PublishSpec {
                stream: sfu::StreamKey(1),
                track: sfu::TrackId(1),
                kind: m.kind,
                mid: m.mid.clone(),
                ssrc: None,
                rtx_ssrc: None,
                codecs: Vec::new(),
                layers: Vec::new(),
                layer_order: Default::default(),
                content: m.content,
            })
            .collect(),
        subscribe: Vec::new(),
    };
    assert!(
        spec.publish
            .iter()
            .all(|p| p.content == TrackContent::Camera)
    );
    crate::session_spec::mark_screen(&mut spec);
    let contents: Vec<_> = spec.publish.iter().map(|p| (p.kind, p.content)).collect();
    assert_eq!(
        contents,
        vec![
            (sfu::MediaKind::Audio, TrackContent::Camera),
            (sfu::MediaKind::Video, TrackContent::Screen)
        ]
    );
}
