//! Logging: `tracing` to stderr, human-readable or one JSON object per line, filtered by
//! `RUST_LOG` (default `info`), with this instance's id on every line.
//!
//! The id is added by the formatter rather than by a root span: the engine and tokio spawn
//! tasks that a span entered in `main` would not follow.

use std::{fmt, io::IsTerminal};

use tracing::{Event, Subscriber};
use tracing_subscriber::{
    EnvFilter,
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::{self, Writer},
    },
    registry::LookupSpan,
};

use crate::config::LogFormat;

/// Installs the global subscriber; does nothing if one is already installed.
pub fn init(format: LogFormat, instance: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // Either way the only error is "a global subscriber is already set": keep that one.
    let _ = match format {
        LogFormat::Human => builder
            .event_format(WithInstance::human(format::Format::default(), instance))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .event_format(WithInstance::json(
                format::Format::default().json(),
                instance,
            ))
            .try_init(),
    };
}

/// Wraps an event formatter to put `instance` on every line.
struct WithInstance<F> {
    inner: F,
    /// Human: `instance=<id> ` written before the line. JSON: `"instance":"<id>"` spliced in
    /// as the object's first member.
    prefix: String,
    json: bool,
}

impl<F> WithInstance<F> {
    fn human(inner: F, instance: &str) -> Self {
        Self {
            inner,
            prefix: format!("instance={instance} "),
            json: false,
        }
    }

    fn json(inner: F, instance: &str) -> Self {
        let id = serde_json::Value::from(instance);
        Self {
            inner,
            prefix: format!("\"instance\":{id}"),
            json: true,
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithInstance<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !self.json {
            writer.write_str(&self.prefix)?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&splice_json(&line, &self.prefix))
    }
}

/// Inserts `member` as the first member of the JSON object `line` (left as is otherwise).
fn splice_json(line: &str, member: &str) -> String {
    match line.strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!("{{{member}{rest}"),
        Some(rest) => format!("{{{member},{rest}"),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::splice_json;

    #[test]
    fn splices_the_instance_first() {
        let member = r#""instance":"a1""#;
        assert_eq!(
            splice_json("{\"level\":\"INFO\"}\n", member),
            "{\"instance\":\"a1\",\"level\":\"INFO\"}\n"
        );
        assert_eq!(splice_json("{}\n", member), "{\"instance\":\"a1\"}\n");
        assert_eq!(splice_json("oops\n", member), "oops\n");
    }
}
