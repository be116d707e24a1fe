//! Who may use the admin API: the browser origins allowed to call it
//! (`admin_origins`) and the bearer token every request must carry
//! (`admin_token_file`). The token lives in a file of its own, read at
//! startup and on every reload, so it is not on the command line (`ps`)
//! nor in a config file that is shared or printed (`--print-config` shows
//! the file's path, never the token).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Invalid;
use crate::limits;

/// The admin API's bearer token, and the file it was read from.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    file: PathBuf,
    /// SHA-256 of the token: what requests are compared against, so the
    /// comparison takes the same time whatever a guess's length.
    digest: [u8; 32],
}

impl AdminToken {
    /// Reads the token from `file`: its first line, surrounding
    /// whitespace removed, of [`limits::ADMIN_TOKEN_BYTES_MIN`] to
    /// [`limits::ADMIN_TOKEN_BYTES_MAX`] visible ASCII characters (what an
    /// HTTP header carries).
    pub fn read(file: &Path) -> Result<AdminToken, Invalid> {
        let invalid = |rule: String| Invalid {
            key: "admin_token_file".into(),
            value: format!("{:?}", file.display().to_string()),
            rule,
        };
        let mut text = String::new();
        std::fs::File::open(file)
            .and_then(|f| {
                f.take(limits::ADMIN_TOKEN_BYTES_MAX as u64 + 1)
                    .read_to_string(&mut text)
            })
            .map_err(|err| invalid(format!("cannot be read: {err}")))?;
        let token = text.lines().next().unwrap_or_default().trim();
        let (min, max) = (limits::ADMIN_TOKEN_BYTES_MIN, limits::ADMIN_TOKEN_BYTES_MAX);
        if text.len() > max {
            return Err(invalid(format!(
                "is longer than {max} bytes; it must hold only the token"
            )));
        }
        if token.len() < min {
            return Err(invalid(format!(
                "holds no token of at least {min} characters; write one, e.g. \
                 `head -c 24 /dev/urandom | base64 > FILE`"
            )));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "holds a token with spaces or non-ASCII characters; use visible ASCII only".into(),
            ));
        }
        Ok(AdminToken {
            file: file.to_path_buf(),
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Where the token was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Whether `presented` is the token, compared in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminToken")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// Checks one `admin_origins` entry: `http` or `https`, `://`, a host and
/// an optional port, nothing else, as a browser sends it in `Origin`.
pub(super) fn check_origin(origin: &str) -> Result<(), Invalid> {
    let invalid = |rule: &str| Invalid {
        key: "admin_origins".into(),
        value: format!("{origin:?}"),
        rule: rule.into(),
    };
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| invalid("is not an origin like \"https://dashboard.example.com\""))?;
    let host_chars = |c: char| c.is_ascii_alphanumeric() || "-.:[]".contains(c);
    if rest.is_empty() || !rest.chars().all(host_chars) {
        return Err(invalid(
            "is not an origin like \"https://dashboard.example.com:8443\": a scheme, a host and \
             an optional port, no path or trailing slash",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::TempFile;

    #[test]
    fn a_token_file_gives_its_first_line_trimmed() {
        let file = TempFile::new("  0123456789abcdef-XYZ \nsecond line ignored\n");
        let token = AdminToken::read(file.path()).unwrap();
        assert!(token.matches(b"0123456789abcdef-XYZ"));
        assert!(!token.matches(b"0123456789abcdef-XY"));
        assert!(!token.matches(b"0123456789abcdef-XYZ "));
        assert!(!token.matches(b""));
        assert_eq!(token.file(), file.path());
        assert!(!format!("{token:?}").contains("0123456789"), "not in Debug");
    }

    #[test]
    fn bad_token_files_are_named_with_the_fix() {
        let short = TempFile::new("short\n");
        let spaced = TempFile::new("0123456789 abcdef\n");
        let long = TempFile::new(&"x".repeat(limits::ADMIN_TOKEN_BYTES_MAX + 1));
        let empty = TempFile::new("");
        let cases = [
            (short.path(), "holds no token of at least 16 characters"),
            (empty.path(), "holds no token of at least 16 characters"),
            (spaced.path(), "spaces or non-ASCII"),
            (long.path(), "longer than 4096 bytes"),
            (Path::new("/nonexistent/ringcast-token"), "cannot be read"),
        ];
        for (path, rule) in cases {
            let err = AdminToken::read(path).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("admin_token_file = \""), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(err.rule.contains(rule), "{text}");
        }
    }

    #[test]
    fn origins_are_a_scheme_a_host_and_a_port() {
        for good in [
            "https://dash.example.com",
            "http://127.0.0.1:3000",
            "https://[::1]:8443",
        ] {
            check_origin(good).unwrap();
        }
        for bad in [
            "dash.example.com",
            "https://dash.example.com/",
            "https://dash.example.com/admin",
            "*",
            "null",
            "https://",
            "ftp://x",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }
}
