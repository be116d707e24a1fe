//! An RTMP player (plain or RTMPS): a client connection that keeps only
//! the first [`MEDIA_PREFIX`] bytes of each media body (the chunk decoder
//! skims the rest) and hands each media message to its [`Watch`].

use tokio::sync::Notify;

use super::{MEDIA_PREFIX, Plan, Watch};
use ringcast_client::{Connection, Disconnect};
use ringcast_rtmp::session::{ClientConfig, ClientEvent};

/// Connects, plays and measures until `stop` is notified (`Ok`) or the
/// connection ends (why, in words).
pub(super) async fn play(
    plan: &Plan,
    watch: &mut Watch<'_>,
    stop: &Notify,
) -> Result<(), Disconnect> {
    let tc_url = format!("{}://{}/{}", plan.scheme(), plan.authority, plan.app);
    let mut config = ClientConfig::new(&plan.app, &tc_url);
    config.media_prefix = Some(MEDIA_PREFIX);
    let mut conn = Connection::over(super::connect(plan).await?, config);
    let stream_id = conn.setup().await?;
    conn.session
        .play(stream_id, &plan.rtmp_stream())
        .map_err(|e| e.to_string())?;
    conn.wait_for("play", ClientEvent::is_play_start).await?;
    watch.playing();
    watch.read(conn.bytes_read);
    loop {
        observe(&mut conn, watch);
        conn.flush().await?;
        tokio::select! {
            read = conn.read() => watch.read(read? as u64),
            () = stop.notified() => return Ok(()),
        }
    }
}

/// Takes the session's events: media goes to the watch, the rest is
/// ignored.
fn observe(conn: &mut Connection, watch: &mut Watch<'_>) {
    let mut batch = watch.batch();
    while let Some(event) = conn.session.poll_event() {
        if let ClientEvent::Media { media, .. } = event {
            batch.media(media.kind, media.timestamp, &media.payload);
        }
    }
}
