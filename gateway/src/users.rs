//! The user directory: who may log in, to which tenant, under which name, with which password.
//!
//! A JSON file given by `--users-file` (without it, the demo directory shipped in
//! `gateway/users.demo.json`, embedded in the binary):
//!
//! ```json
//! {"users": [{"username": "alice", "tenant": "acme", "name": "Alice", "roles": ["admin"],
//!             "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$..."}]}
//! ```
//!
//! Passwords are stored as argon2id PHC strings, which carry their own parameters, so a
//! directory may mix costs. A login for an unknown username is verified against a dummy hash of
//! the directory's cost, so the answer takes as long as for a wrong password.
//! `gateway add-user` ([`add_user`]) appends a user with a freshly hashed password.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use argon2::{
    Algorithm, Argon2, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::{Error, counters::Counters, ids, refusal::Refusal, tenancy, validate};

pub use argon2::Params;

/// The demo directory shipped with the gateway, used when no `--users-file` is given.
pub const DEMO_DIRECTORY: &str = include_str!("../users.demo.json");

/// Longest password accepted, in bytes (argon2 would take more; nobody needs more).
pub const PASSWORD_MAX: usize = 1024;

/// The role that may change its tenant's settings.
pub const ADMIN_ROLE: &str = "admin";

/// The users file as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    /// Every user; usernames are unique across tenants.
    pub users: Vec<UserRecord>,
}

/// One user as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The login name and user id: 1 to 64 characters of `A-Z a-z 0-9 _ . -`.
    pub username: String,
    /// The tenant id, same characters.
    pub tenant: String,
    /// The display name other users see in `from` (1 to 32 characters, no control characters).
    pub name: String,
    /// Roles within the tenant; `admin` may change the tenant's settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The argon2id hash of the password, as a PHC string.
    pub password_hash: String,
}

/// Hashes `password` with argon2id at `params` and a 16-byte salt from the OS generator.
pub fn hash_password(password: &str, params: Params) -> Result<String, Error> {
    check_password(password)?;
    let mut salt = [0u8; 16];
    ids::os_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|err| Error::InvalidUser(err.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| Error::InvalidUser(err.to_string()))
}

/// Appends a user to the directory file at `path` (created if missing), hashing `password`
/// with argon2id's recommended parameters. The file is replaced atomically.
pub fn add_user(
    path: &Path,
    username: &str,
    tenant: &str,
    name: &str,
    admin: bool,
    password: &str,
) -> Result<(), Error> {
    let mut file = match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path)?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => UsersFile::default(),
        Err(err) => return Err(file_error(path, err)),
    };
    if file.users.iter().any(|user| user.username == username) {
        return Err(Error::InvalidUser(format!(
            "{username:?} already exists in {}",
            path.display()
        )));
    }
    let mut record = UserRecord {
        username: username.to_owned(),
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        roles: if admin {
            vec![ADMIN_ROLE.to_owned()]
        } else {
            Vec::new()
        },
        password_hash: String::new(),
    };
    check_identity(&record).map_err(Error::InvalidUser)?;
    record.password_hash = hash_password(password, Params::default())?;
    file.users.push(record);
    let mut text = serde_json::to_string_pretty(&file).map_err(|err| file_error(path, err))?;
    text.push('\n');
    let temporary = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&temporary, text).map_err(|err| file_error(path, err))?;
    std::fs::rename(&temporary, path).map_err(|err| file_error(path, err))
}

/// A user as the gateway knows it once the directory is loaded.
#[derive(Debug, Clone)]
pub(crate) struct User {
    /// The user id (the username).
    pub(crate) id: Arc<str>,
    /// The tenant id.
    pub(crate) tenant: Arc<str>,
    /// The display name.
    pub(crate) name: Arc<str>,
    /// Whether the user may change the tenant's settings.
    pub(crate) admin: bool,
}

/// Default logins that may wait for a verification permit (`--login-queue`).
pub const DEFAULT_LOGIN_QUEUE: usize = 64;

/// The loaded directory: users by username, and what logins need to verify passwords.
pub(crate) struct Directory {
    users: HashMap<String, (User, String)>,
    /// Verified instead of a real hash when the username is unknown.
    dummy_hash: String,
    /// Password verifications are CPU- and memory-hungry: at most this many at a time (one per
    /// CPU by default). A permit is owned by the blocking verification itself, so a client
    /// that goes away does not free it before the work ends.
    verifications: Arc<Semaphore>,
    /// Logins verifying or waiting to: the verification permits plus the queue. A login that
    /// finds none left is refused at once (503) instead of queueing without bound.
    admissions: Arc<Semaphore>,
}

impl Directory {
    /// Loads the file at `path`, or the embedded demo directory.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, Error> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| file_error(path, err))?;
                Self::from_file(parse(&text, path)?, &path.display().to_string())
            }
            None => {
                let source = "<embedded demo directory>";
                let file =
                    serde_json::from_str(DEMO_DIRECTORY).map_err(|err| Error::UsersFile {
                        path: source.to_owned(),
                        reason: err.to_string(),
                    })?;
                Self::from_file(file, source)
            }
        }
    }

    /// Validates every record and prepares the dummy hash.
    fn from_file(file: UsersFile, source: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::UsersFile {
            path: source.to_owned(),
            reason,
        };
        let mut users = HashMap::with_capacity(file.users.len());
        let mut dummy_params = None;
        for record in file.users {
            check_record(&record).map_err(invalid)?;
            if dummy_params.is_none() {
                dummy_params = PasswordHash::new(&record.password_hash)
                    .ok()
                    .and_then(|hash| Params::try_from(&hash).ok());
            }
            let user = User {
                id: record.username.as_str().into(),
                tenant: record.tenant.as_str().into(),
                name: record.name.as_str().into(),
                admin: record.roles.iter().any(|role| role == ADMIN_ROLE),
            };
            if users
                .insert(record.username.clone(), (user, record.password_hash))
                .is_some()
            {
                return Err(invalid(format!(
                    "username {:?} appears twice",
                    record.username
                )));
            }
        }
        let mut dummy_password = [0u8; 16];
        ids::os_random(&mut dummy_password)?;
        let dummy_hash = hash_password(
            &format!("{dummy_password:02x?}"),
            dummy_params.unwrap_or_default(),
        )?;
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Self {
            users,
            dummy_hash,
            verifications: Arc::new(Semaphore::new(cpus)),
            admissions: Arc::new(Semaphore::new(cpus + DEFAULT_LOGIN_QUEUE)),
        })
    }

    /// At most `permits` verifications at once (at least 1), and at most `queue` logins
    /// waiting for one.
    pub(crate) fn limited(mut self, permits: usize, queue: usize) -> Self {
        // Semaphore::new panics beyond MAX_PERMITS: a configured number is clamped to it.
        let permits = permits.clamp(1, Semaphore::MAX_PERMITS);
        let admissions = permits.saturating_add(queue).min(Semaphore::MAX_PERMITS);
        self.verifications = Arc::new(Semaphore::new(permits));
        self.admissions = Arc::new(Semaphore::new(admissions));
        self
    }

    /// The number of users.
    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }

    /// The user with id `id`.
    pub(crate) fn user(&self, id: &str) -> Option<&User> {
        self.users.get(id).map(|(user, _)| user)
    }

    /// `Ok(Some(user))` if `password` is theirs, `Ok(None)` if not (an unknown username costs
    /// one verification too), `Err(Unavailable)` at once when every verification permit is
    /// taken and the queue is full. Each verification started is counted in `counters`.
    pub(crate) async fn authenticate(
        self: &Arc<Self>,
        username: &str,
        password: &str,
        counters: &Arc<Counters>,
    ) -> Result<Option<User>, Refusal> {
        if username.len() > tenancy::ID_MAX || password.len() > PASSWORD_MAX {
            return Ok(None);
        }
        let admission = Arc::clone(&self.admissions)
            .try_acquire_owned()
            .map_err(|_| Refusal::Unavailable("too many logins in progress, retry later"))?;
        // Dropping this future while it waits here (the client went away) leaves the queue;
        // once the permit is taken, it belongs to the blocking work below.
        let Ok(permit) = Arc::clone(&self.verifications).acquire_owned().await else {
            return Err(Refusal::Internal);
        };
        let directory = Arc::clone(self);
        let counters = Arc::clone(counters);
        let (username, password) = (username.to_owned(), password.to_owned());
        let verified = tokio::task::spawn_blocking(move || {
            let _held = (admission, permit);
            counters.password_verifications.incr();
            let (user, hash) = match directory.users.get(&username) {
                Some((user, hash)) => (Some(user), hash),
                None => (None, &directory.dummy_hash),
            };
            let matches = PasswordHash::new(hash).is_ok_and(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            });
            user.filter(|_| matches).cloned()
        })
        .await;
        verified.map_err(|err| {
            tracing::error!(%err, "password verification task failed");
            Refusal::Internal
        })
    }
}

/// Refuses passwords that are empty or absurdly long.
fn check_password(password: &str) -> Result<(), Error> {
    if password.is_empty() || password.len() > PASSWORD_MAX {
        return Err(Error::InvalidUser(format!(
            "the password must be 1 to {PASSWORD_MAX} bytes long"
        )));
    }
    Ok(())
}

/// Why a record cannot be used, if it cannot.
fn check_record(record: &UserRecord) -> Result<(), String> {
    check_identity(record)?;
    let who = &record.username;
    let hash = PasswordHash::new(&record.password_hash)
        .map_err(|err| format!("{who}: password_hash is not a PHC string: {err}"))?;
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return Err(format!(
            "{who}: password_hash must be argon2id, not {}",
            hash.algorithm
        ));
    }
    Params::try_from(&hash).map_err(|err| format!("{who}: password_hash parameters: {err}"))?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(format!("{who}: password_hash has no salt or no hash"));
    }
    Ok(())
}

/// Why a record's username, tenant or display name cannot be used, if one cannot.
fn check_identity(record: &UserRecord) -> Result<(), String> {
    let who = &record.username;
    if !tenancy::valid_id(who) {
        return Err(format!(
            "username {who:?} must be 1 to 64 characters of A-Z a-z 0-9 _ . -"
        ));
    }
    if !tenancy::valid_id(&record.tenant) {
        return Err(format!(
            "{who}: tenant {:?} must be 1 to 64 characters of A-Z a-z 0-9 _ . -",
            record.tenant
        ));
    }
    validate::name(&record.name).map_err(|err| format!("{who}: name: {err}"))
}

fn parse(text: &str, path: &Path) -> Result<UsersFile, Error> {
    serde_json::from_str(text).map_err(|err| file_error(path, err))
}

fn file_error(path: &Path, err: impl std::fmt::Display) -> Error {
    Error::UsersFile {
        path: path.display().to_string(),
        reason: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cheapest argon2id parameters: tests only.
    fn cheap() -> Params {
        Params::new(8, 1, 1, None).unwrap_or_default()
    }

    fn record(username: &str, tenant: &str, password: &str) -> UserRecord {
        UserRecord {
            username: username.into(),
            tenant: tenant.into(),
            name: username.into(),
            roles: Vec::new(),
            password_hash: hash_password(password, cheap()).unwrap_or_default(),
        }
    }

    fn directory(records: Vec<UserRecord>) -> Result<Arc<Directory>, Error> {
        Directory::from_file(UsersFile { users: records }, "test").map(Arc::new)
    }

    #[tokio::test]
    async fn verifies_passwords_and_refuses_the_rest_alike() {
        let dir =
            directory(vec![record("alice", "acme", "secret")]).unwrap_or_else(|e| panic!("{e}"));
        let counters = Arc::new(Counters::default());
        let check = |user: &'static str, password: String| {
            let (dir, counters) = (dir.clone(), counters.clone());
            async move {
                dir.authenticate(user, &password, &counters)
                    .await
                    .ok()
                    .flatten()
            }
        };
        let alice = check("alice", "secret".into()).await;
        assert_eq!(alice.map(|u| u.tenant.to_string()), Some("acme".into()));
        assert!(check("alice", "wrong".into()).await.is_none());
        assert!(check("nobody", "secret".into()).await.is_none());
        assert!(check("alice", "x".repeat(PASSWORD_MAX + 1)).await.is_none());
    }

    #[test]
    fn refuses_invalid_records() {
        let good = record("alice", "acme", "pw");
        let mut cases = Vec::new();
        let mut bad = good.clone();
        bad.username = "a:b".into();
        cases.push(bad);
        let mut bad = good.clone();
        bad.tenant = "t:x".into();
        cases.push(bad);
        let mut bad = good.clone();
        bad.name = String::new();
        cases.push(bad);
        let mut bad = good.clone();
        bad.password_hash = "plain".into();
        cases.push(bad);
        let mut bad = good.clone();
        bad.password_hash = bad.password_hash.replace("argon2id", "argon2i");
        cases.push(bad);
        for bad in cases {
            assert!(directory(vec![bad.clone()]).is_err(), "{bad:?}");
        }
        assert!(directory(vec![good.clone(), good]).is_err(), "duplicate");
    }

    #[test]
    fn the_demo_directory_loads() {
        let demo = Directory::load(None).unwrap_or_else(|err| panic!("{err}"));
        assert!(demo.len() >= 4);
        assert!(demo.user("alice").is_some_and(|alice| alice.admin));
    }

    #[test]
    fn add_user_appends_and_refuses_duplicates() {
        let path =
            std::env::temp_dir().join(format!("gateway-add-user-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&path);
        add_user(&path, "zoe", "acme", "Zoë", true, "pw-zoe").unwrap_or_else(|e| panic!("{e}"));
        add_user(&path, "yan", "globex", "Yan", false, "pw-yan").unwrap_or_else(|e| panic!("{e}"));
        assert!(add_user(&path, "zoe", "acme", "Zoë", false, "again").is_err());
        assert!(add_user(&path, "x", "acme", "X", false, "").is_err());
        let dir = Directory::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_file(&path);
        assert_eq!(dir.len(), 2);
        assert!(
            dir.user("zoe")
                .is_some_and(|u| u.admin && &*u.name == "Zoë")
        );
        assert!(
            dir.user("yan")
                .is_some_and(|u| !u.admin && &*u.tenant == "globex")
        );
    }
}
