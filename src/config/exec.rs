//! `[app.NAME] exec_publish`: the program an app runs while one of its
//! streams is published here, as an argument vector (never a shell), with
//! placeholders inside its arguments: `{app}`, `{name}` (the stream name
//! without its query), `{args}` (the query) and `{port}` (the first RTMP
//! listen port). `{{` and `}}` write a brace.
//!
//! A placeholder fills part of one argument and never splits or adds
//! one, whatever the publisher named its stream. The program itself
//! takes none: a publisher's name must not choose what runs.

use super::Invalid;
use crate::limits;

/// A checked `exec_publish`: the program (looked up in `PATH` as written)
/// and its arguments, each text and placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecCommand {
    /// As the file wrote it, for `--print-config`.
    written: Vec<String>,
    /// The arguments after the program.
    args: Vec<Vec<Piece>>,
}

/// What the placeholders of one start stand for.
#[derive(Clone, Copy, Debug)]
pub struct ExecValues<'a> {
    pub app: &'a str,
    /// The stream name without its query.
    pub name: &'a str,
    /// The stream name's query, without the `?`.
    pub args: &'a str,
    /// The first RTMP listen port, as bound.
    pub port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholder {
    App,
    Name,
    Args,
    Port,
}

const PLACEHOLDERS: [(&str, Placeholder); 4] = [
    ("app", Placeholder::App),
    ("name", Placeholder::Name),
    ("args", Placeholder::Args),
    ("port", Placeholder::Port),
];

/// What every placeholder error ends with.
const KNOWN: &str =
    ": the placeholders are {app}, {name}, {args} and {port} ({{ and }} write a brace)";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(Placeholder),
}

impl ExecCommand {
    /// The vector `argv` of key `key` (as the file names it), checked.
    pub fn parse(key: &str, argv: &[String]) -> Result<ExecCommand, Invalid> {
        let fail = |value: String, rule: String| Invalid {
            key: key.to_owned().into(),
            value,
            rule,
        };
        let Some((program, args)) = argv.split_first() else {
            let rule = "must name a program, as [\"ffmpeg\", \"-i\", \"rtmp://127.0.0.1:{port}/{app}/{name}\", …]";
            return Err(fail("[]".into(), rule.into()));
        };
        if argv.len() > limits::EXEC_ARGS_MAX {
            let rule = format!("lists more than {} arguments", limits::EXEC_ARGS_MAX);
            return Err(fail(format!("[{} arguments]", argv.len()), rule));
        }
        if let Some(arg) = argv.iter().find(|arg| arg.contains('\0')) {
            let rule = "holds a NUL byte, which no program argument can".into();
            return Err(fail(format!("{arg:?}"), rule));
        }
        if program.is_empty() || program.contains(['{', '}']) {
            let rule = "is the program, which must be a name or a path without placeholders \
                        (a publisher's stream name must not choose what runs)";
            return Err(fail(format!("{program:?}"), rule.into()));
        }
        let args = (args.iter())
            .map(|arg| pieces(arg).map_err(|rule| fail(format!("{arg:?}"), rule)))
            .collect::<Result<_, _>>()?;
        Ok(ExecCommand {
            written: argv.to_vec(),
            args,
        })
    }

    /// The program, as written.
    pub fn program(&self) -> &str {
        self.written.first().map_or("", String::as_str)
    }

    /// The vector as the file wrote it.
    pub fn written(&self) -> &[String] {
        &self.written
    }

    /// The argument vector, program first, with `values` in place of the
    /// placeholders.
    pub fn argv(&self, values: &ExecValues<'_>) -> Vec<String> {
        let port = values.port.to_string();
        let args = self.args.iter().map(|pieces| {
            (pieces.iter())
                .map(|piece| match piece {
                    Piece::Text(text) => text.as_str(),
                    Piece::Value(Placeholder::App) => values.app,
                    Piece::Value(Placeholder::Name) => values.name,
                    Piece::Value(Placeholder::Args) => values.args,
                    Piece::Value(Placeholder::Port) => &port,
                })
                .collect::<String>()
        });
        std::iter::once(self.program().to_owned())
            .chain(args)
            .collect()
    }
}

/// One argument as text and placeholders; `Err` is the rule it breaks.
fn pieces(arg: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = arg;
    while let Some(at) = rest.find(['{', '}']) {
        let (before, from) = rest.split_at(at);
        text.push_str(before);
        if let Some(after) = from.strip_prefix("{{") {
            text.push('{');
            rest = after;
        } else if let Some(after) = from.strip_prefix("}}") {
            text.push('}');
            rest = after;
        } else if let Some(open) = from.strip_prefix('{') {
            let Some((inside, after)) = open.split_once('}') else {
                return Err(format!("has a {{ without its }}{KNOWN}"));
            };
            let Some(&(_, placeholder)) = PLACEHOLDERS.iter().find(|(name, _)| *name == inside)
            else {
                return Err(format!("has an unknown placeholder {{{inside}}}{KNOWN}"));
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Value(placeholder));
            rest = after;
        } else {
            return Err(format!("has a }} without its {{{KNOWN}"));
        }
    }
    text.push_str(rest);
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<ExecCommand, Invalid> {
        let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
        ExecCommand::parse("exec_publish", &argv)
    }

    fn rule(argv: &[&str]) -> String {
        parse(argv).expect_err("refused").to_string()
    }

    const CAM: ExecValues<'static> = ExecValues {
        app: "live",
        name: "cam",
        args: "key=s3cret&x=1",
        port: 1935,
    };

    #[test]
    fn placeholders_fill_parts_of_arguments_and_braces_escape() {
        let command = parse(&[
            "ffmpeg",
            "-i",
            "rtmp://127.0.0.1:{port}/{app}/{name}?{args}",
            "{name}",
            "{{name}} {{}}",
            "",
            "/out/{app}-{name}.jpg",
        ])
        .unwrap();
        assert_eq!(command.program(), "ffmpeg");
        assert_eq!(
            command.argv(&CAM),
            [
                "ffmpeg",
                "-i",
                "rtmp://127.0.0.1:1935/live/cam?key=s3cret&x=1",
                "cam",
                "{name} {}",
                "",
                "/out/live-cam.jpg",
            ]
        );
    }

    #[test]
    fn a_name_with_spaces_or_braces_stays_one_argument_and_is_not_expanded() {
        let command = parse(&["thumb", "{name}", "-o", "{app}/{name}.jpg"]).unwrap();
        let odd = ExecValues {
            name: "a b;{app} $(x)",
            ..CAM
        };
        assert_eq!(
            command.argv(&odd),
            ["thumb", "a b;{app} $(x)", "-o", "live/a b;{app} $(x).jpg"]
        );
    }

    #[test]
    fn bad_vectors_are_refused_naming_the_key_and_the_fault() {
        let known =
            "the placeholders are {app}, {name}, {args} and {port} ({{ and }} write a brace)";
        let cases: [(&[&str], String); 8] = [
            (
                &[],
                "exec_publish = [] must name a program, as [\"ffmpeg\", \"-i\", \
                 \"rtmp://127.0.0.1:{port}/{app}/{name}\", …]"
                    .into(),
            ),
            (
                &["ffmpeg", "-i", "rtmp://h/{app}/{stream}"],
                format!(
                    "exec_publish = \"rtmp://h/{{app}}/{{stream}}\" has an unknown placeholder \
                     {{stream}}: {known}"
                ),
            ),
            (
                &["ffmpeg", "{name"],
                format!("exec_publish = \"{{name\" has a {{ without its }}: {known}"),
            ),
            (
                &["ffmpeg", "name}"],
                format!("exec_publish = \"name}}\" has a }} without its {{: {known}"),
            ),
            (
                &["ffmpeg", "{}"],
                format!("exec_publish = \"{{}}\" has an unknown placeholder {{}}: {known}"),
            ),
            (
                &["/usr/bin/{app}", "-i"],
                "exec_publish = \"/usr/bin/{app}\" is the program, which must be a name or a \
                 path without placeholders (a publisher's stream name must not choose what runs)"
                    .into(),
            ),
            (
                &["", "-i"],
                "exec_publish = \"\" is the program, which must be a name or a path without \
                 placeholders (a publisher's stream name must not choose what runs)"
                    .into(),
            ),
            (
                &["ffmpeg", "a\0b"],
                "exec_publish = \"a\\0b\" holds a NUL byte, which no program argument can".into(),
            ),
        ];
        for (argv, expected) in cases {
            assert_eq!(rule(argv), expected, "{argv:?}");
        }
        let long = vec!["x"; limits::EXEC_ARGS_MAX + 1];
        assert_eq!(
            rule(&long),
            format!(
                "exec_publish = [{} arguments] lists more than {} arguments",
                limits::EXEC_ARGS_MAX + 1,
                limits::EXEC_ARGS_MAX
            )
        );
    }
}
