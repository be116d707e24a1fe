//! Moving a publish to another server when the server asks (E-RTMP v2,
//! "Reconnect Request"). The new connection is set up while the old one
//! goes on carrying the stream; the owner switches at its next video
//! keyframe (the spec's "next appropriate media boundary"), so players of
//! the new server start on a keyframe and those of the old one get every
//! frame before it; only then is the old connection closed. Timestamps
//! are the publisher's own and simply go on.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use ringcast_rtmp::protocol::MessageStreamId;
use ringcast_rtmp::protocol::command::CapsEx;
use ringcast_rtmp::protocol::url::{RtmpUrl, UrlError, split_query};
use ringcast_rtmp::session::{ClientConfig, ClientEvent};

use ringcast_tls::ClientTls;

use super::{Connection, Disconnect, Sender};

/// Where a reconnect request sends us: `requested` resolved against our
/// `current` tcUrl as the spec allows (absolute `rtmp://host/app`,
/// network-path `//host/app`, absolute-path `/app`, or a path relative to
/// the current app's), or `current` itself when the request named none.
/// A scheme the URL parser does not take is an error.
pub fn target(current: &RtmpUrl, requested: Option<&str>) -> Result<RtmpUrl, UrlError> {
    let Some(requested) = requested else {
        return Ok(current.clone());
    };
    if requested.contains("://") {
        // Whichever schemes the URL parser takes.
        return RtmpUrl::parse(requested);
    }
    if let Some(rest) = requested.strip_prefix("//") {
        // The current URL's scheme, as written.
        let shown = current.to_string();
        let scheme = shown.split_once("://").map_or("rtmp", |(scheme, _)| scheme);
        return RtmpUrl::parse(&format!("{scheme}://{rest}"));
    }
    let (path, query) = split_query(requested);
    let path = match path.strip_prefix('/') {
        Some(absolute) => absolute.to_owned(),
        None => match current.path.rsplit_once('/') {
            Some((directory, _)) => format!("{directory}/{path}"),
            None => path.to_owned(),
        },
    };
    Ok(RtmpUrl {
        path: path.trim_matches('/').to_owned(),
        query: query.map(str::to_owned),
        ..current.clone()
    })
}

/// Connects to a `tcUrl` (`rtmp[s]://host[:port]/app[/instance][?query]`)
/// announcing `caps_ex`: its whole path and query are the app, as ffmpeg
/// sends them (a reconnect request names a `tcUrl`, not a stream URL).
/// An `rtmps://` one is verified against `roots` as
/// [`Connection::open_url`] does.
pub async fn open(
    tc_url: &RtmpUrl,
    caps_ex: CapsEx,
    roots: Option<&ClientTls>,
) -> Result<Connection, Disconnect> {
    let app = match &tc_url.query {
        Some(query) => format!("{}?{query}", tc_url.path),
        None => tc_url.path.clone(),
    };
    let mut config = ClientConfig::new(&app, &tc_url.to_string());
    config.caps_ex = caps_ex;
    Connection::open_as(tc_url, config, roots).await
}

/// Connects to `tc_url` announcing [`CapsEx::RECONNECT`] and publishes
/// `name` there: the connection once `NetStream.Publish.Start` came, and
/// the stream id to send on.
pub async fn publish(
    tc_url: &RtmpUrl,
    name: &str,
    roots: Option<&ClientTls>,
) -> Result<(Connection, MessageStreamId), Disconnect> {
    let mut conn = open(tc_url, CapsEx::RECONNECT, roots).await?;
    let stream_id = conn.setup().await?;
    conn.session
        .publish(stream_id, name)
        .map_err(|e| e.to_string())?;
    conn.wait_for("publish", ClientEvent::is_publish_start)
        .await?;
    Ok((conn, stream_id))
}

/// A publish on its way to another server; dropping it gives the move up
/// (the new connection, if any, is closed).
pub struct Move {
    done: Rc<RefCell<Option<Result<Moved, Disconnect>>>>,
    task: tokio::task::JoinHandle<()>,
}

/// The new connection, publishing: send the stream's headers on it, then
/// the keyframe, then close the old connection.
pub struct Moved {
    pub sender: Sender,
    pub stream_id: MessageStreamId,
    /// Where it is: the tcUrl further requests are resolved against.
    pub tc_url: RtmpUrl,
}

impl Move {
    /// Starts connecting to `to` and publishing `name` there, given up
    /// after `timeout`. Runs as a task of its own on the current
    /// tokio-uring runtime: the owner goes on sending on the old
    /// connection meanwhile.
    pub fn start(to: RtmpUrl, name: &str, timeout: Duration, roots: Option<ClientTls>) -> Move {
        let done = Rc::new(RefCell::new(None));
        let (slot, target, name) = (done.clone(), to, name.to_owned());
        let task = tokio_uring::spawn(async move {
            let moving = publish(&target, &name, roots.as_ref());
            let result = match tokio::time::timeout(timeout, moving).await {
                Ok(Ok((conn, stream_id))) => Ok(Moved {
                    sender: conn.into_sender(),
                    stream_id,
                    tc_url: target,
                }),
                Ok(Err(reason)) => Err(reason),
                Err(_) => Err(format!("no Publish.Start within {timeout:?}")),
            };
            *slot.borrow_mut() = Some(result);
        });
        Move { done, task }
    }

    /// The new connection once it publishes, or why it could not; `None`
    /// while it is still being set up. Never waits: the owner asks at each
    /// keyframe and switches on the first `Some(Ok(..))`.
    pub fn poll_ready(&self) -> Option<Result<Moved, Disconnect>> {
        self.done.borrow_mut().take()
    }
}

impl Drop for Move {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> RtmpUrl {
        RtmpUrl::parse(text).expect("url")
    }

    #[test]
    fn a_request_without_a_url_returns_to_the_current_one() {
        let current = url("rtmp://a.example:1936/live?k=1");
        assert_eq!(target(&current, None), Ok(current));
    }

    #[test]
    fn every_form_the_spec_allows_resolves_against_the_current_url() {
        let current = url("rtmp://a.example:1936/live");
        let resolved = |requested: &str| target(&current, Some(requested)).map(|u| u.to_string());
        assert_eq!(
            resolved("rtmp://foo.mydomain.com:1935/realtimeapp"),
            Ok("rtmp://foo.mydomain.com:1935/realtimeapp".into())
        );
        assert_eq!(
            resolved("rtmp://127.0.0.1/realtimeapp"),
            Ok("rtmp://127.0.0.1:1935/realtimeapp".into())
        );
        assert_eq!(
            resolved("//192.0.2.0/realtimeapp"),
            Ok("rtmp://192.0.2.0:1935/realtimeapp".into())
        );
        assert_eq!(
            resolved("/realtimeapp?token=t"),
            Ok("rtmp://a.example:1936/realtimeapp?token=t".into())
        );
        assert_eq!(resolved("other"), Ok("rtmp://a.example:1936/other".into()));
        let instance = url("rtmp://a.example/app/inst");
        assert_eq!(
            target(&instance, Some("inst2")).map(|u| u.path),
            Ok("app/inst2".into())
        );
    }

    #[test]
    fn a_url_that_is_not_rtmp_is_refused() {
        let current = url("rtmp://a.example/live");
        assert!(matches!(
            target(&current, Some("http://b.example/live")),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            target(&current, Some("rtmp://:1935/live")),
            Err(UrlError::NoHost(_))
        ));
    }
}
