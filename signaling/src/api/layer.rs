//! The WHEP layer extension (`urn:ietf:params:whep:ext:core:layer`, from the WHEP draft):
//! `POST /whep/{stream}/{session}/layer` with a JSON body chooses the simulcast encoding and the
//! spatial/temporal layers a viewer receives, and (a Ringcast field) its quality preset; `GET`
//! lists the layers of the source it watches. Each layer choice becomes a `Command::SetLayers`
//! for the viewer's shard, each preset a `Command::SetQuality`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use sfu::control::{Command, LayerOrder, LayerSelection};
use sfu::{Mid, SessionId};

use super::{check_auth, check_content_type, header_value, read_body};
use crate::problem::Problem;
use crate::quality::Preset;
use crate::registry::{Registry, Role, SessionRecord};
use crate::state::AppState;

/// The link relation that advertises the extension on the WHEP 201 response.
pub const LAYER_REL: &str = "urn:ietf:params:whep:ext:core:layer";

/// Largest layer request body accepted.
const MAX_BODY: usize = 4096;

/// The fields of a layer request, each absent, `null` (the highest there is) or a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerRequest {
    pub media_id: Option<Mid>,
    pub encoding_id: Option<Option<String>>,
    pub spatial: Option<Option<u8>>,
    pub temporal: Option<Option<u8>>,
    pub max_spatial: Option<Option<u8>>,
    pub max_temporal: Option<Option<u8>>,
    /// A quality preset for the whole session (`null`: none, no cap).
    pub quality: Option<Option<&'static Preset>>,
}

const FIELDS: [&str; 7] = [
    "mediaId",
    "encodingId",
    "spatialLayerId",
    "temporalLayerId",
    "maxSpatialLayerId",
    "maxTemporalLayerId",
    "quality",
];

impl LayerRequest {
    /// Reads a request body: a JSON object with at least one layer field.
    pub fn parse(body: &[u8]) -> Result<LayerRequest, Problem> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| Problem::bad_request(format!("the body is not JSON: {e}")))?;
        let Value::Object(obj) = v else {
            return Err(Problem::bad_request("the body must be a JSON object"));
        };
        if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(Problem::bad_request(format!(
                "unknown field {k:?}; fields are {}",
                FIELDS.join(", ")
            )));
        }
        let media_id = match obj.get("mediaId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(Mid(s.clone())),
            Some(_) => return Err(Problem::bad_request("mediaId must be a non-empty string")),
        };
        let encoding_id = match obj.get("encodingId") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) if !s.is_empty() => Some(Some(s.clone())),
            Some(_) => {
                return Err(Problem::bad_request(
                    "encodingId must be a non-empty string or null",
                ));
            }
        };
        let quality = match obj.get("quality") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(name)) => Some(Some(super::offer::quality_preset(name)?)),
            Some(_) => {
                return Err(Problem::bad_request(
                    "quality must be a preset name or null",
                ));
            }
        };
        let req = LayerRequest {
            media_id,
            encoding_id,
            spatial: layer_field(&obj, "spatialLayerId")?,
            temporal: layer_field(&obj, "temporalLayerId")?,
            max_spatial: layer_field(&obj, "maxSpatialLayerId")?,
            max_temporal: layer_field(&obj, "maxTemporalLayerId")?,
            quality,
        };
        if !req.names_a_layer() && req.quality.is_none() {
            return Err(Problem::bad_request(
                "name a layer: encodingId, spatialLayerId, temporalLayerId, maxSpatialLayerId or maxTemporalLayerId (null: the highest), or a quality preset",
            ));
        }
        Ok(req)
    }

    /// Whether the request changes the layer selection (not only the quality preset).
    pub fn names_a_layer(&self) -> bool {
        self.encoding_id.is_some()
            || self.spatial.is_some()
            || self.temporal.is_some()
            || self.max_spatial.is_some()
            || self.max_temporal.is_some()
    }
}

fn layer_field(obj: &Map<String, Value>, name: &str) -> Result<Option<Option<u8>>, Problem> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => v
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .filter(|n| *n < u8::MAX)
            .map(|n| Some(Some(n)))
            .ok_or_else(|| {
                Problem::bad_request(format!("{name} must be an integer from 0 to 254 or null"))
            }),
    }
}

fn parse_session(s: &str) -> Result<SessionId, Problem> {
    u64::from_str_radix(s, 16)
        .map(SessionId)
        .map_err(|_| Problem::not_found("no such session"))
}

/// The viewer session behind the path, or 404.
fn viewer<'a>(
    reg: &'a Registry,
    stream: &str,
    session: &str,
) -> Result<(SessionId, &'a SessionRecord), Problem> {
    let id = parse_session(session)?;
    let rec = reg
        .session(id)
        .filter(|r| r.stream == stream && r.role == Role::Viewer)
        .ok_or_else(|| Problem::not_found("no such WHEP session"))?;
    Ok((id, rec))
}

/// Resolves a request against what the registry knows into the viewer's mid and the selection.
pub fn resolve(
    reg: &Registry,
    id: SessionId,
    rec: &SessionRecord,
    req: &LayerRequest,
) -> Result<(Mid, LayerSelection), Problem> {
    let mid = match &req.media_id {
        Some(m) => {
            if !rec.video_mids.contains(m) {
                return Err(Problem::unprocessable(format!(
                    "mediaId {:?} is not a video media section of this session",
                    m.0
                )));
            }
            m.clone()
        }
        None => rec
            .video_mids
            .first()
            .cloned()
            .ok_or_else(|| Problem::unprocessable("this session receives no video"))?,
    };
    let prev = rec
        .selections
        .iter()
        .find(|(m, _)| *m == mid)
        .map(|(_, s)| *s)
        .unwrap_or_default();
    let source = reg.published_video_for(id, &mid);
    let encoding = match &req.encoding_id {
        None => None,
        Some(None) => Some(None),
        Some(Some(rid)) => {
            let Some(src) = source.filter(|s| !s.layers.is_empty()) else {
                return Err(Problem::unprocessable(
                    "encodingId needs a simulcast publisher on this stream",
                ));
            };
            let index = src.layers.iter().position(|r| r.0 == *rid).ok_or_else(|| {
                Problem::unprocessable(format!(
                    "no encoding {rid:?}; the source has {}",
                    rid_list(&src.layers)
                ))
            })?;
            Some(Some(index as u8))
        }
    };
    let spatial = match (encoding, req.spatial) {
        (Some(e), Some(s)) if e != s => {
            return Err(Problem::bad_request(
                "encodingId and spatialLayerId name different layers",
            ));
        }
        (Some(e), _) => Some(e),
        (None, s) => s,
    };
    if let (Some(Some(s)), Some(src)) = (spatial, source)
        && src.layers.len() > 1
        && usize::from(s) >= src.layers.len()
    {
        return Err(Problem::unprocessable(format!(
            "spatialLayerId {s} is beyond the source's {} encodings",
            src.layers.len()
        )));
    }
    let pick = |new: Option<Option<u8>>, old: Option<u8>| new.unwrap_or(old);
    let selection = LayerSelection {
        spatial: pick(spatial, prev.spatial),
        temporal: pick(req.temporal, prev.temporal),
        max_spatial: pick(req.max_spatial, prev.max_spatial),
        max_temporal: pick(req.max_temporal, prev.max_temporal),
    };
    Ok((mid, selection))
}

fn rid_list(rids: &[sfu::Rid]) -> String {
    rids.iter()
        .map(|r| r.0.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `POST .../layer`: applies a layer request; `204`.
pub async fn post(
    State(st): State<Arc<AppState>>,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let run = async {
        check_auth(&st, &headers)?;
        {
            let reg = st
                .registry
                .lock()
                .map_err(|_| Problem::internal("registry lock poisoned"))?;
            viewer(&reg, &stream, &session)?;
        }
        check_content_type(&headers, "application/json")?;
        let bytes = read_body(body, MAX_BODY).await?;
        let req = LayerRequest::parse(&bytes)?;
        let mut reg = st
            .registry
            .lock()
            .map_err(|_| Problem::internal("registry lock poisoned"))?;
        let (id, rec) = viewer(&reg, &stream, &session)?;
        let shard = rec.shard;
        // Resolve everything before changing anything: a refused request changes nothing.
        let layers = if req.names_a_layer() {
            Some(resolve(&reg, id, rec, &req)?)
        } else {
            None
        };
        if let Some((mid, selection)) = layers {
            reg.set_selection(id, &mid, selection);
            st.media.send(
                shard,
                Command::SetLayers {
                    session: id,
                    mid: Some(mid.clone()),
                    selection,
                },
            );
            tracing::info!(session = %id, stream = %stream, mid = %mid.0, ?selection, "layer selection");
        }
        if let Some(preset) = req.quality {
            reg.set_quality(id, preset);
            let cap = preset.map(Preset::cap).unwrap_or_default();
            st.media
                .send(shard, Command::SetQuality { session: id, cap });
            tracing::info!(session = %id, stream = %stream, quality = preset.map(|p| p.name), "quality preset");
        }
        Ok::<Response, Problem>(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET .../layer`: the layers of the source each video media section receives, and the
/// viewer's current selection.
pub async fn get(
    State(st): State<Arc<AppState>>,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let run = || -> Result<Response, Problem> {
        check_auth(&st, &headers)?;
        let reg = st
            .registry
            .lock()
            .map_err(|_| Problem::internal("registry lock poisoned"))?;
        let (id, rec) = viewer(&reg, &stream, &session)?;
        let mut out = Map::new();
        for mid in &rec.video_mids {
            let source = reg.published_video_for(id, mid);
            let encodings: Vec<Value> = source
                .map(|s| {
                    s.layers
                        .iter()
                        .enumerate()
                        .map(|(i, r)| json!({"encodingId": r.0, "spatialLayerId": i}))
                        .collect()
                })
                .unwrap_or_default();
            let order = source.map(|s| match s.order {
                LayerOrder::Named => "named",
                LayerOrder::Measured => "measuring",
            });
            let sel = rec
                .selections
                .iter()
                .find(|(m, _)| m == mid)
                .map(|(_, s)| *s)
                .unwrap_or_default();
            out.insert(
                mid.0.clone(),
                json!({
                    "publishing": source.is_some(),
                    "simulcast": !encodings.is_empty(),
                    "encodings": encodings,
                    "order": order,
                    "selected": {
                        "spatialLayerId": sel.spatial,
                        "temporalLayerId": sel.temporal,
                        "maxSpatialLayerId": sel.max_spatial,
                        "maxTemporalLayerId": sel.max_temporal,
                    },
                }),
            );
        }
        let mut resp = (StatusCode::OK, Value::Object(out).to_string()).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, header_value("application/json"));
        Ok(resp)
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_a_layer_field_of_the_right_type() {
        let ok = LayerRequest::parse(br#"{"mediaId":"1","encodingId":"q","temporalLayerId":0}"#)
            .expect("valid");
        assert_eq!(ok.media_id, Some(Mid("1".into())));
        assert_eq!(ok.encoding_id, Some(Some("q".into())));
        assert_eq!(ok.temporal, Some(Some(0)));
        assert_eq!(ok.spatial, None);
        let reset = LayerRequest::parse(br#"{"spatialLayerId":null}"#).expect("valid");
        assert_eq!(reset.spatial, Some(None));
        let q = LayerRequest::parse(br#"{"quality":"720p"}"#).expect("quality alone");
        assert_eq!(q.quality.flatten().map(|p| p.name), Some("720p"));
        assert!(!q.names_a_layer());
        let both = LayerRequest::parse(br#"{"quality":null,"encodingId":"q"}"#).expect("valid");
        assert_eq!(both.quality, Some(None));
        assert!(both.names_a_layer());
        let unknown = LayerRequest::parse(br#"{"quality":"4k"}"#).expect_err("unknown preset");
        assert_eq!(unknown.status.as_u16(), 422);
        for bad in [
            &br#"{"quality":720}"#[..],
            br#"{"quality":""}"#,
            br#"{"quality":["low"]}"#,
        ] {
            let e = LayerRequest::parse(bad).expect_err(&String::from_utf8_lossy(bad));
            assert_eq!(e.status.as_u16(), 400, "{}", String::from_utf8_lossy(bad));
        }
        for bad in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"mediaId":"1"}"#,
            br#"{"spatialLayerId":-1}"#,
            br#"{"spatialLayerId":1.5}"#,
            br#"{"spatialLayerId":"1"}"#,
            br#"{"temporalLayerId":300}"#,
            br#"{"encodingId":3}"#,
            br#"{"encodingId":""}"#,
            br#"{"layer":1}"#,
        ] {
            let e = LayerRequest::parse(bad).expect_err(&String::from_utf8_lossy(bad));
            assert_eq!(e.status.as_u16(), 400, "{}", String::from_utf8_lossy(bad));
        }
    }
}
