//! Recording settings: `[record]`, the default of every app, and
//! `[app.NAME.record]` laid over it; the file name template they name
//! files by. What a recording does with them is [`crate::record`]'s.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ::time::OffsetDateTime;
use ::time::format_description::{self, BorrowedFormatItem};
use serde::{Deserialize, Serialize};

use crate::limits;

/// Recording for every app.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordConfig {
    /// The settings of apps without an `[app.NAME.record]` section.
    pub default: RecordSettings,
    /// Per app: the default with the app's own keys laid over it.
    pub apps: BTreeMap<String, RecordSettings>,
}

impl RecordConfig {
    /// The settings of `app`.
    pub fn for_app(&self, app: &str) -> &RecordSettings {
        self.apps.get(app).unwrap_or(&self.default)
    }
}

/// How one app's streams are recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSettings {
    /// Every stream of the app is recorded from the start of its source
    /// (otherwise only when the admin API asks).
    pub enabled: bool,
    /// Where each file goes.
    pub path: PathTemplate,
    pub format: RecordFormat,
    /// A file ends at the first keyframe this long after it began; zero:
    /// no limit.
    pub max_duration: Duration,
    /// A file ends at the first keyframe once it holds this many bytes;
    /// 0: no limit.
    pub max_bytes: u64,
}

impl Default for RecordSettings {
    fn default() -> Self {
        RecordSettings {
            enabled: false,
            path: PathTemplate::default(),
            format: RecordFormat::Flv,
            max_duration: Duration::ZERO,
            max_bytes: 0,
        }
    }
}

/// What a recording's files hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// FLV: the messages as received, with a keyframe index.
    Flv,
    /// Fragmented MP4 (CMAF), as the HLS packager makes it.
    Mp4,
}

impl RecordFormat {
    /// As the file, logs and hooks name it; also the file extension.
    pub fn name(self) -> &'static str {
        match self {
            RecordFormat::Flv => "flv",
            RecordFormat::Mp4 => "mp4",
        }
    }
}

/// Where a recording file goes: a path with placeholders, checked when
/// the configuration is read.
///
/// - `{app}`, `{stream}`: the app and the stream name, sanitised (ASCII
///   letters, digits, `-`, `_` and `.` kept, anything else `_`, a leading
///   `.` made `_`, at most [`limits::RECORD_NAME_BYTES_MAX`] bytes), so a
///   name a peer chose can neither leave the directory nor hide a file;
/// - `{start:FORMAT}`: when the file started, in UTC, FORMAT in strftime's
///   terms (`%Y%m%dT%H%M%S`); `{start}` is that format.
///
/// UTC, not local time: names sort and compare across servers and
/// daylight-saving changes, and reading the local offset is unsound in a
/// process with threads (the `time` crate refuses it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    App,
    Stream,
    /// A strftime format, checked when read.
    Start(String),
}

/// The template of `{start}` without a format.
const START_FORMAT_DEFAULT: &str = "%Y%m%dT%H%M%S";

/// The default template: a directory per app, a file per stream and
/// start.
const PATH_DEFAULT: &str = "/var/lib/ringcast/{app}/{stream}-{start:%Y%m%dT%H%M%S}.flv";

/// Bytes of a template. Why: `PATH_MAX` is 4096 on Linux, and the names
/// put in add up to [`limits::RECORD_NAME_BYTES_MAX`] each.
const PATH_BYTES_MAX: usize = 1024;

impl Default for PathTemplate {
    fn default() -> Self {
        PATH_DEFAULT.parse().unwrap_or_else(|_| PathTemplate {
            text: String::new(),
            parts: Vec::new(),
        })
    }
}

impl FromStr for PathTemplate {
    type Err = String;

    /// `Err` says what is wrong, for the key's error message.
    fn from_str(text: &str) -> Result<PathTemplate, String> {
        if text.is_empty() || text.len() > PATH_BYTES_MAX {
            return Err(format!("must be a path of 1 to {PATH_BYTES_MAX} bytes"));
        }
        if text.ends_with('/') {
            return Err("names a directory: end it with a file name".into());
        }
        if text.contains('\0') {
            return Err("holds a NUL byte".into());
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let (literal, after) = rest.split_at(open);
            if !literal.is_empty() {
                parts.push(Part::Text(literal.to_owned()));
            }
            let close = after
                .find('}')
                .ok_or("has a { without its }: placeholders are {app}, {stream}, {start:FORMAT}")?;
            let name = after.get(1..close).unwrap_or_default();
            parts.push(match name.split_once(':') {
                None if name == "app" => Part::App,
                None if name == "stream" => Part::Stream,
                None if name == "start" => Part::Start(START_FORMAT_DEFAULT.into()),
                Some(("start", format)) => {
                    check_start_format(format)?;
                    Part::Start(format.to_owned())
                }
                _ => {
                    return Err(format!(
                        "has an unknown placeholder {{{name}}}: they are {{app}}, {{stream}}, {{start:FORMAT}}"
                    ));
                }
            });
            rest = after.get(close + 1..).unwrap_or_default();
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(PathTemplate {
            text: text.to_owned(),
            parts,
        })
    }
}

/// A `{start:FORMAT}` that formats a time: strftime syntax the `time`
/// crate reads, and components a UTC time has.
fn check_start_format(format: &str) -> Result<(), String> {
    let items = format_description::parse_strftime_borrowed(format)
        .map_err(|e| format!("has {{start:{format}}}, not a strftime format: {e}"))?;
    OffsetDateTime::UNIX_EPOCH
        .format(&items)
        .map(|_| ())
        .map_err(|e| format!("has {{start:{format}}}, which cannot format a time: {e}"))
}

impl PathTemplate {
    /// The file of `app`'s stream `stream` starting at `start`.
    pub fn render(
        &self,
        app: &str,
        stream: &str,
        start: OffsetDateTime,
    ) -> Result<PathBuf, String> {
        let mut path = String::with_capacity(self.text.len() + app.len() + stream.len());
        for part in &self.parts {
            match part {
                Part::Text(text) => path.push_str(text),
                Part::App => path.push_str(&sanitised(app)),
                Part::Stream => path.push_str(&sanitised(stream)),
                Part::Start(format) => {
                    let items: Vec<BorrowedFormatItem<'_>> =
                        format_description::parse_strftime_borrowed(format)
                            .map_err(|e| e.to_string())?;
                    let time = start.format(&items).map_err(|e| e.to_string())?;
                    path.push_str(&time);
                }
            }
        }
        Ok(PathBuf::from(path))
    }

    /// The extension the template gives its files, if it is one a format
    /// names.
    pub fn format_extension(&self) -> Option<RecordFormat> {
        [RecordFormat::Flv, RecordFormat::Mp4]
            .into_iter()
            .find(|format| self.text.ends_with(&format!(".{}", format.name())))
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A name a peer chose, made one safe file name component: ASCII
/// letters, digits, `-`, `_`, `.` as they are, anything else `_`; no
/// leading `.` (no `..`, no hidden file); never empty; at most
/// [`limits::RECORD_NAME_BYTES_MAX`] bytes.
pub fn sanitised(name: &str) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(limits::RECORD_NAME_BYTES_MAX)
        .collect();
    if safe.starts_with('.') {
        safe.replace_range(..1, "_");
    }
    if safe.is_empty() {
        safe.push('_');
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix_s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix_s).unwrap()
    }

    #[test]
    fn the_default_template_names_a_file_per_app_stream_and_start() {
        let template = PathTemplate::default();
        assert_eq!(template.to_string(), PATH_DEFAULT);
        // 2026-03-01T12:34:56Z
        let path = template.render("live", "cam", at(1_772_368_496)).unwrap();
        assert_eq!(
            path,
            PathBuf::from("/var/lib/ringcast/live/cam-20260301T123456.flv")
        );
        assert_eq!(template.format_extension(), Some(RecordFormat::Flv));
    }

    #[test]
    fn names_from_peers_cannot_leave_the_directory() {
        let template: PathTemplate = "/rec/{app}/{stream}.flv".parse().unwrap();
        let render = |app, stream| template.render(app, stream, at(0)).unwrap();
        assert_eq!(
            render("live", "../../etc/passwd"),
            PathBuf::from("/rec/live/_._.._etc_passwd.flv")
        );
        assert_eq!(render("..", ".."), PathBuf::from("/rec/_./_..flv"));
        assert_eq!(render("live", ""), PathBuf::from("/rec/live/_.flv"));
        assert_eq!(
            render("live", "a/b\\c\u{1b}[1m é"),
            PathBuf::from("/rec/live/a_b_c__1m__.flv")
        );
        let long = "x".repeat(5000);
        let name = render("live", &long);
        assert_eq!(
            name.file_name().unwrap().len(),
            limits::RECORD_NAME_BYTES_MAX + ".flv".len()
        );
        for path in [render("..", "../x"), render("a", ".hidden")] {
            let names: Vec<String> = (path.components())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names.len(), 4, "{path:?}: /, rec, app, file");
            assert!(names.iter().all(|n| !n.starts_with('.')), "{path:?}");
        }
    }

    #[test]
    fn start_takes_a_strftime_format_in_utc() {
        let template: PathTemplate = "r/{start:%Y/%m/%d}/{stream}-{start}.mp4".parse().unwrap();
        let path = template.render("live", "cam", at(86_400 + 3_661)).unwrap();
        assert_eq!(path, PathBuf::from("r/1970/01/02/cam-19700102T010101.mp4"));
        assert_eq!(template.format_extension(), Some(RecordFormat::Mp4));
        let plain: PathTemplate = "/rec/{stream}".parse().unwrap();
        assert_eq!(plain.format_extension(), None);
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (text, says) in [
            ("", "1 to 1024 bytes"),
            ("/rec/", "names a directory"),
            ("/rec/{stream", "without its }"),
            ("/rec/{name}.flv", "unknown placeholder {name}"),
            ("/rec/{start:%Q}.flv", "not a strftime format"),
            ("/rec/{app:x}.flv", "unknown placeholder {app:x}"),
        ] {
            let err = text.parse::<PathTemplate>().expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
