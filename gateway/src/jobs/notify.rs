//! DM notifications: a direct message whose recipient was offline, rendered as a mail and
//! handed to a [`Transport`]. The shipped transport is [`Outbox`], a directory with one file
//! per message (`--outbox`), which a mail relay or any other process can pick up; an SMTP or
//! push transport plugs in by implementing the trait.

use std::{future::Future, path::PathBuf, pin::Pin};

use tokio::io::AsyncWriteExt;

use super::{job::DmNotification, worker::Failure};
use crate::tenancy;

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mail {
    /// The message id: delivering the same id twice must deliver one message.
    pub(crate) id: String,
    /// The whole text, headers and body.
    pub(crate) text: String,
}

/// The future a [`Transport`] returns.
pub(crate) type Delivering<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;

/// Where rendered notifications go. Deliveries may repeat (jobs run at least once): a
/// transport delivers a [`Mail::id`] once.
pub(crate) trait Transport: Send + Sync {
    /// Delivers `mail`.
    fn deliver<'a>(&'a self, mail: &'a Mail) -> Delivering<'a>;
}

/// `dm` rendered as a mail (RFC 5322 style). Header values lose their control characters, so
/// no text of a user adds a header; the text is the body.
pub(crate) fn render(dm: &DmNotification) -> Result<Mail, Failure> {
    // The id names a file: only an id's characters, never a leading dot.
    if !tenancy::valid_id(&dm.id) || dm.id.starts_with('.') {
        return Err(Failure::Permanent(format!("not a message id: {:?}", dm.id)));
    }
    let header = |value: &str| -> String {
        value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let text = format!(
        "Message-Id: <{id}@{tenant}>\r\nTo: {to}@{tenant}\r\nSubject: New message from {from}\r\n\
         X-Gateway-Sent-Ms: {ts}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {from} wrote to you while you were away:\r\n\r\n{body}\r\n",
        id = dm.id,
        tenant = header(&dm.tenant),
        to = header(&dm.to_user),
        from = header(&dm.from_name),
        ts = dm.ts,
        body = dm.text.replace("\r\n", "\n").replace('\n', "\r\n"),
    );
    Ok(Mail {
        id: dm.id.clone(),
        text,
    })
}

/// The outbox directory: `<id>.eml` per message, written to a temporary file and renamed, so
/// a reader never sees half a message and a second delivery replaces the first.
pub(crate) struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// The outbox in `dir` (created if missing).
    pub(crate) fn open(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    async fn write(&self, mail: &Mail) -> std::io::Result<()> {
        let name = format!("{}.eml", mail.id);
        let temporary = self
            .dir
            .join(format!(".{name}.{}.tmp", crate::ids::random_id()));
        let written = async {
            let mut file = tokio::fs::File::create(&temporary).await?;
            file.write_all(mail.text.as_bytes()).await?;
            file.sync_all().await?;
            tokio::fs::rename(&temporary, self.dir.join(&name)).await
        }
        .await;
        if written.is_err() {
            let _best_effort = tokio::fs::remove_file(&temporary).await;
        }
        written
    }
}

impl Transport for Outbox {
    fn deliver<'a>(&'a self, mail: &'a Mail) -> Delivering<'a> {
        Box::pin(async move {
            self.write(mail)
                .await
                .map_err(|err| Failure::Transient(format!("outbox {}: {err}", self.dir.display())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(id: &str, from_name: &str) -> DmNotification {
        DmNotification {
            tenant: "acme".into(),
            to_user: "bob".into(),
            from_name: from_name.into(),
            text: "hi\nthere".into(),
            id: id.into(),
            ts: 7,
        }
    }

    #[test]
    fn renders_headers_without_injection() {
        let mail = render(&dm("abc-1", "eve\r\nBcc: all@x")).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(mail.id, "abc-1");
        assert!(mail.text.contains("To: bob@acme\r\n"), "{}", mail.text);
        assert!(!mail.text.contains("\r\nBcc:"), "{}", mail.text);
        assert!(mail.text.ends_with("hi\r\nthere\r\n"), "{}", mail.text);
        for bad in ["../etc", ".hidden", "", "a/b"] {
            assert!(render(&dm(bad, "x")).is_err(), "{bad:?}");
        }
    }
}
