//! Where a store lives, as `--store` names it: an embedded data directory
//! (`sqlite://DIR`, or a plain path) or a PostgreSQL database
//! (`postgres://…`), opened behind the one [`Store`] trait.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::{LockWait, PgStore, Result, SqliteStore, Store};

/// A store of either backend, for a thread of its own.
pub type AnyStore = Box<dyn Store + Send>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// SQLite and the file archive in a data directory.
    Dir(PathBuf),
    /// A PostgreSQL connection string (`postgres://user:pass@host/db`).
    Postgres(String),
}

impl StoreLocation {
    /// `sqlite://DIR`, `postgres://…` / `postgresql://…`, or a directory.
    pub fn parse(text: &str) -> StoreLocation {
        if let Some(dir) = text.strip_prefix("sqlite://") {
            StoreLocation::Dir(PathBuf::from(dir))
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            StoreLocation::Postgres(text.to_owned())
        } else {
            StoreLocation::Dir(PathBuf::from(text))
        }
    }

    /// The data directory, for an embedded store.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            StoreLocation::Dir(d) => Some(d),
            StoreLocation::Postgres(_) => None,
        }
    }

    /// Whether a store is there. A database is taken to be (connecting
    /// creates its schema).
    pub fn exists(&self) -> bool {
        match self {
            StoreLocation::Dir(d) => SqliteStore::exists(d),
            StoreLocation::Postgres(_) => true,
        }
    }

    /// Opens the store for writing, creating it (a data directory, a
    /// database's schema) when need be. An embedded store is taken as its
    /// one writer, waiting per `wait`; a database takes concurrent writers.
    pub fn open_writer(&self, wait: &mut LockWait<'_>) -> Result<AnyStore> {
        Ok(match self {
            StoreLocation::Dir(d) => Box::new(SqliteStore::open_writer(d, wait)?),
            StoreLocation::Postgres(url) => Box::new(PgStore::connect(url)?),
        })
    }

    /// Opens an existing store for reading.
    pub fn open_reader(&self) -> Result<AnyStore> {
        Ok(match self {
            StoreLocation::Dir(d) => Box::new(SqliteStore::open_reader(d)?),
            StoreLocation::Postgres(url) => Box::new(PgStore::connect(url)?),
        })
    }

    /// Brings the store's schema up to date; the version it is at.
    pub fn migrate(&self, wait: &mut LockWait<'_>) -> Result<i64> {
        match self {
            StoreLocation::Dir(d) => SqliteStore::open_writer(d, wait)?.schema_version(),
            StoreLocation::Postgres(url) => PgStore::connect(url)?.schema_version(),
        }
    }
}

impl fmt::Display for StoreLocation {
    /// The directory, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Dir(d) => write!(f, "{}", d.display()),
            StoreLocation::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_hide_passwords() {
        assert_eq!(
            StoreLocation::parse("sqlite:///var/lib/turncoat"),
            StoreLocation::Dir("/var/lib/turncoat".into())
        );
        assert_eq!(
            StoreLocation::parse("turncoat-data"),
            StoreLocation::Dir("turncoat-data".into())
        );
        let pg = StoreLocation::parse("postgres://tc:s3cret@db.internal:5432/turncoat");
        assert_eq!(
            pg.to_string(),
            "postgres://tc:***@db.internal:5432/turncoat"
        );
        assert!(pg.dir().is_none());
        assert_eq!(
            StoreLocation::parse("postgresql://db/x").to_string(),
            "postgresql://db/x"
        );
    }
}
