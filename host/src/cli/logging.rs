//! The binary's log: `WARDEN_LOG` filters, `WARDEN_LOG_FORMAT` is `text`
//! (default) or `json`; text fields are escaped so nothing logged can
//! forge or hide a line.

/// `WARDEN_LOG` filters, `WARDEN_LOG_FORMAT` is `text` (default) or `json`.
/// Every field and message is escaped (see [`log_escape`]): a user name or a
/// guest's log message holding a newline or a terminal escape cannot forge
/// or hide a line.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let json = std::env::var("WARDEN_LOG_FORMAT").is_ok_and(|f| f.trim().eq_ignore_ascii_case("json"));
    if json {
        // JSON string escaping already covers every control character.
        builder.json().init();
    } else {
        builder.fmt_fields(log_escape::EscapedFields).with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// Text-format fields with control characters escaped.
mod log_escape {
    use std::fmt::Write as _;

    use tracing::field::{Field, Visit};
    use tracing_subscriber::field::RecordFields;
    use tracing_subscriber::fmt::FormatFields;
    use tracing_subscriber::fmt::format::Writer;

    /// Formats fields as the default text format does (`message` bare, then
    /// `name=value`), with `\n`, `\r`, ESC and every other control character
    /// (and U+2028/U+2029) written as escapes.
    #[derive(Debug)]
    pub struct EscapedFields;

    impl<'w> FormatFields<'w> for EscapedFields {
        fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> std::fmt::Result {
            let mut visitor = Visitor { writer, first: true, result: Ok(()) };
            fields.record(&mut visitor);
            visitor.result
        }
    }

    struct Visitor<'w> {
        writer: Writer<'w>,
        first: bool,
        result: std::fmt::Result,
    }

    impl Visit for Visitor<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if self.result.is_err() {
                return;
            }
            let raw = format!("{value:?}");
            let text = escape(&raw);
            let separator = if self.first { "" } else { " " };
            self.first = false;
            let name = field.name();
            self.result = if name == "message" {
                write!(self.writer, "{separator}{text}")
            } else {
                write!(self.writer, "{separator}{}={text}", name.strip_prefix("r#").unwrap_or(name))
            };
        }
    }

    pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
        let unsafe_char = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
        if !text.chars().any(unsafe_char) {
            return std::borrow::Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if unsafe_char(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        std::borrow::Cow::Owned(out)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn control_characters_are_escaped() {
            assert_eq!(super::escape("plain text é"), "plain text é");
            assert_eq!(
                super::escape("x\nINFO forged\r\u{1b}[31m\u{2028}"),
                "x\\nINFO forged\\r\\u{1b}[31m\\u{2028}"
            );
        }
    }
}
