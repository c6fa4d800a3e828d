//! Secrets and certificates read from files named by flags, so that none of them has to be
//! on a command line, in an environment variable or in a URL.

use std::path::Path;

use crate::Error;

/// The first line of `path` (named by `flag`), without its line ending; refused when empty.
pub(crate) fn first_line(flag: &'static str, path: &Path) -> Result<String, Error> {
    let text =
        String::from_utf8(read(flag, path)?).map_err(|_| refused(flag, path, "not UTF-8"))?;
    let line = text.lines().next().unwrap_or_default().trim_end();
    if line.is_empty() {
        return Err(refused(flag, path, "empty first line"));
    }
    Ok(line.to_owned())
}

/// The whole of `path` (named by `flag`).
pub(crate) fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|err| refused(flag, path, &err.to_string()))
}

/// The error naming `flag`, `path` and `reason`.
pub(crate) fn refused(flag: &'static str, path: &Path, reason: &str) -> Error {
    Error::SecretFile {
        flag,
        path: path.display().to_string(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_line_and_refuses_nothing() {
        let dir = std::env::temp_dir().join(format!("gateway-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "s3cret\r\nignored\n").unwrap();
        assert_eq!(first_line("--x", &file).unwrap(), "s3cret");
        std::fs::write(&file, "\n").unwrap();
        assert!(first_line("--x", &file).is_err());
        let missing = first_line("--x", &dir.join("missing"))
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("--x "), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
