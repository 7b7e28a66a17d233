//! `POST /whip/{stream}` and `POST /whep/{stream}`: an SDP offer in, a session on a shard and the
//! SDP answer out (RFC 9725 §4.2).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use sfu::control::Command;
use sfu::{MediaKind, SessionId};

use super::{check_auth, check_content_type, check_stream_name, header_value, read_body};
use crate::problem::Problem;
use crate::quality;
use crate::registry::{Role, published_video};
use crate::sdp;
use crate::session_spec;
use crate::state::AppState;

pub async fn whip(
    state: State<Arc<AppState>>,
    path: Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    offer(state, path, headers, body, Role::Publisher, Ok(None))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /whep/{stream}`, optionally `?quality=<preset>` (any name of [`crate::quality`]).
pub async fn whep(
    state: State<Arc<AppState>>,
    path: Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let quality = query
        .map(|Query(mut q)| q.remove("quality"))
        .map_err(|e| Problem::bad_request(format!("bad query string: {e}")));
    offer(state, path, headers, body, Role::Viewer, quality)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// A quality preset by name: `400` for an empty name, `422` for one that is not a preset.
pub(crate) fn quality_preset(name: &str) -> Result<&'static quality::Preset, Problem> {
    if name.trim().is_empty() {
        return Err(Problem::bad_request(format!(
            "quality needs a preset name: {}",
            quality::names()
        )));
    }
    quality::find(name).ok_or_else(|| {
        Problem::unprocessable(format!(
            "no quality preset {name:?}; presets are {}",
            quality::names()
        ))
    })
}

/// `OPTIONS` on an endpoint: what it accepts, and the ICE servers.
pub async fn options(State(st): State<Arc<AppState>>) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert("accept-post", header_value("application/sdp"));
    for link in &st.ice_links {
        h.append(header::LINK, link.clone());
    }
    resp
}

/// Maps an SDP error to 400 (malformed) or 422 (well-formed but unsupported).
pub(crate) fn sdp_problem(e: sdp::SdpError) -> Problem {
    if e.http_status() == 422 {
        Problem::unprocessable(e.to_string())
    } else {
        Problem::bad_request(e.to_string())
    }
}

async fn offer(
    State(st): State<Arc<AppState>>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
    role: Role,
    quality: Result<Option<String>, Problem>,
) -> Result<Response, Problem> {
    check_auth(&st, &headers)?;
    check_stream_name(&stream)?;
    let preset = quality?.map(|n| quality_preset(&n)).transpose()?;
    check_content_type(&headers, "application/sdp")?;
    let bytes = read_body(body, st.cfg.max_sdp_bytes).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Problem::bad_request("the SDP offer is not UTF-8 text"))?;
    let offer = sdp::parse_offer(text).map_err(sdp_problem)?;
    let sdp_role = match role {
        Role::Publisher => sdp::Role::Publisher,
        Role::Viewer => sdp::Role::Viewer,
    };
    let neg = sdp::negotiate(&offer, sdp_role, &st.capabilities).map_err(sdp_problem)?;
    let id = SessionId(session_spec::random_id());
    let etag = format!("\"{:016x}\"", session_spec::random_id());
    let ice = session_spec::local_ice();
    let answer = {
        // Commands go out under the lock so that link changes of concurrent requests stay ordered.
        let mut reg = st
            .registry
            .lock()
            .map_err(|_| Problem::internal("registry lock poisoned"))?;
        let adm = reg.admit(
            id,
            &stream,
            role,
            etag.clone(),
            neg.remote_ice.ufrag.clone(),
        )?;
        let port = st.media.port(adm.shard);
        let (spec, local) =
            session_spec::build(id, role, adm.key, &stream, &neg, ice, &st.media, port);
        match role {
            Role::Publisher => {
                reg.set_published_video(&stream, published_video(&spec));
            }
            Role::Viewer => {
                let mids = spec
                    .subscribe
                    .iter()
                    .filter(|s| s.kind == MediaKind::Video)
                    .map(|s| s.mid.clone())
                    .collect();
                reg.set_video_mids(id, mids);
                reg.set_quality(id, preset);
            }
        }
        st.media
            .send(adm.shard, Command::AddSession(Box::new(spec)));
        if let Some(p) = preset {
            st.media.send(
                adm.shard,
                Command::SetQuality {
                    session: id,
                    cap: p.cap(),
                },
            );
        }
        for (to, cmd) in adm.commands {
            st.media.send(to, cmd);
        }
        tracing::info!(session = %id, stream = %stream, ?role, shard = %adm.shard, quality = preset.map(|p| p.name), "session created");
        sdp::write_answer(&neg, &local)
    };
    let kind = match role {
        Role::Publisher => "whip",
        Role::Viewer => "whep",
    };
    let location = format!("/{kind}/{stream}/{id}");
    let mut resp = (StatusCode::CREATED, answer).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value("application/sdp"));
    h.insert(header::LOCATION, header_value(&location));
    h.insert(header::ETAG, header_value(&etag));
    h.insert(
        super::ACCEPT_PATCH,
        header_value("application/trickle-ice-sdpfrag"),
    );
    for link in &st.ice_links {
        h.append(header::LINK, link.clone());
    }
    if role == Role::Publisher {
        // Dynacast: which encodings viewers need, for publishers that follow it.
        h.append(
            header::LINK,
            header_value(&format!(
                "<{location}/layers>; rel=\"{}\"",
                super::layers::LAYERS_REL
            )),
        );
    }
    if role == Role::Viewer {
        // The WHEP layer extension: the viewer picks its simulcast/SVC layers there.
        h.append(
            header::LINK,
            header_value(&format!(
                "<{location}/layer>; rel=\"{}\"",
                super::layer::LAYER_REL
            )),
        );
    }
    Ok(resp)
}
