//! The command line: every setting is a flag and a `QUARRY_*` environment variable, parsed
//! once into typed structs.

use clap::{ArgAction, Parser, Subcommand};
use std::path::PathBuf;

/// Credentials used when none are configured. Documented, and loudly warned about at start.
pub const DEFAULT_ROOT_USER: &str = "quarryadmin";
/// See [`DEFAULT_ROOT_USER`].
pub const DEFAULT_ROOT_PASSWORD: &str = "quarryadmin";

/// Quarry: an S3-compatible object store for analytics and AI/ML.
#[derive(Debug, Parser)]
#[command(name = "quarry", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the S3 API over HTTP from a data directory or an erasure set of drives.
    Server(ServerArgs),
    /// Check and repair a stopped server's drives: rebuild missing or corrupt shards and
    /// metadata (a running server heals by itself).
    Heal(HealArgs),
    /// Manage IAM users and access keys on a running server (through its IAM API).
    Admin(crate::admin::AdminArgs),
}

/// The drive set, shared by `server` and `heal`.
#[derive(Debug, Clone, clap::Args)]
pub struct DriveArgs {
    /// Drives of the erasure set, in slot order: 1 to 16 directories, `DIR{1...N}` expands.
    /// One directory (the default) stores objects there without parity.
    #[arg(env = "QUARRY_DRIVES", value_delimiter = ' ', num_args = 1.., default_value = "./data")]
    pub drives: Vec<String>,

    /// Parity shards per block for a new set (default grows with the set: 1 for 2-3
    /// drives, 2 for 4-5, 3 for 6-7, 4 for 8-16). Fixed once the set is formatted.
    #[arg(long, env = "QUARRY_PARITY")]
    pub parity: Option<usize>,

    /// I/O engine for shard reads and writes: `uring` (io_uring; falls back to std when the
    /// kernel refuses it) or `std` (a thread pool doing pread/pwrite).
    #[arg(long, env = "QUARRY_IO_ENGINE", default_value = "uring")]
    pub io_engine: quarry_storage::EngineKind,

    /// fsync data and metadata before acknowledging a write. Turning it off trades crash
    /// durability for speed (benchmarks, scratch data).
    #[arg(long, env = "QUARRY_FSYNC", default_value_t = true, action = ArgAction::Set)]
    pub fsync: bool,

    /// Page cache of the metadata indexes, in MiB, for the whole set (split over its
    /// drives): bounds the memory metadata takes, whatever the number of objects.
    #[arg(long, env = "QUARRY_INDEX_CACHE_MIB", default_value_t = 64)]
    pub index_cache_mib: usize,
}

impl DriveArgs {
    /// The drive paths with every `{A...B}` expanded.
    pub fn paths(&self) -> anyhow::Result<Vec<PathBuf>> {
        Ok(quarry_storage::drives::expand_all(&self.drives)?
            .into_iter()
            .map(PathBuf::from)
            .collect())
    }

    /// Store options from these flags.
    pub fn store_options(&self) -> quarry_storage::StoreOptions {
        quarry_storage::StoreOptions {
            fsync: self.fsync,
            parity: self.parity,
            io_engine: self.io_engine,
            index_cache_bytes: self.index_cache_mib.saturating_mul(1 << 20),
            ..quarry_storage::StoreOptions::default()
        }
    }
}

/// `quarry heal` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct HealArgs {
    #[command(flatten)]
    pub drives: DriveArgs,

    /// Also verify every bitrot checksum of every shard (reads all data).
    #[arg(long)]
    pub deep: bool,
}

/// `quarry server` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub drives: DriveArgs,

    /// Address to listen on, HOST:PORT. Port 0 picks a free port (printed at start).
    #[arg(long, env = "QUARRY_ADDRESS", default_value = "127.0.0.1:9000")]
    pub address: String,

    /// Region this server answers for (signatures must be scoped to it).
    #[arg(long, env = "QUARRY_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Domain for virtual-host-style requests (`bucket.DOMAIN`); repeat for several.
    /// Without one, only path-style addressing is used.
    #[arg(long = "domain", env = "QUARRY_DOMAIN", value_delimiter = ',')]
    pub domains: Vec<String>,

    /// Root access key. Defaults to `quarryadmin`, with a warning.
    #[arg(long, env = "QUARRY_ROOT_USER", hide_env_values = true)]
    pub root_user: Option<String>,

    /// Root secret key. Defaults to `quarryadmin`, with a warning.
    #[arg(long, env = "QUARRY_ROOT_PASSWORD", hide_env_values = true)]
    pub root_password: Option<String>,

    /// Seconds between background scans that check every object's shards and metadata
    /// on every drive and heal what is missing (0: only heal what reads find degraded).
    #[arg(long, env = "QUARRY_HEAL_INTERVAL", default_value_t = 3600)]
    pub heal_interval: u64,

    /// Seconds to let in-flight requests finish after SIGINT/SIGTERM.
    #[arg(long, env = "QUARRY_SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace: u64,

    /// S3 Select queries that run at once (default: 4 per core); more wait in line.
    #[arg(long, env = "QUARRY_SELECT_MAX_QUERIES")]
    pub select_max_queries: Option<usize>,

    /// Seconds a Select query waits for a slot before it is refused with SlowDown.
    #[arg(long, env = "QUARRY_SELECT_QUEUE_WAIT", default_value_t = 30)]
    pub select_queue_wait: u64,

    /// Shortest lifetime, in seconds, STS AssumeRole grants temporary credentials (AWS:
    /// 900). Lower it only for tests that watch credentials expire.
    #[arg(long, env = "QUARRY_STS_MIN_DURATION", default_value_t = 900)]
    pub sts_min_duration: i64,

    /// MiB of memory one Select query may hold for aggregation and sorting.
    #[arg(long, env = "QUARRY_SELECT_MEMORY_MIB", default_value_t = 512)]
    pub select_memory_mib: usize,

    /// Object Ownership of a bucket created without one: BucketOwnerEnforced (AWS's
    /// default since 2023: ACLs off), or ObjectWriter / BucketOwnerPreferred (ACLs on, as
    /// on AWS before 2023 and on Ceph and MinIO, for tools that set ACLs).
    #[arg(long, env = "QUARRY_DEFAULT_OBJECT_OWNERSHIP", default_value = "BucketOwnerEnforced")]
    pub default_object_ownership: crate::iam::acl::Ownership,
}

impl ServerArgs {
    /// Select's limits from these flags.
    pub fn select_limits(&self) -> quarry_select::Limits {
        let d = quarry_select::Limits::default();
        quarry_select::Limits {
            max_concurrent: self.select_max_queries.unwrap_or(d.max_concurrent).max(1),
            queue_wait: std::time::Duration::from_secs(self.select_queue_wait),
            memory_per_query: self.select_memory_mib.saturating_mul(1024 * 1024),
            ..d
        }
    }
}

impl Cli {
    /// The drive flags of whichever command was given (`admin` has none).
    pub fn command_drives(&self) -> Option<&DriveArgs> {
        match &self.command {
            Command::Server(a) => Some(&a.drives),
            Command::Heal(h) => Some(&h.drives),
            Command::Admin(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["quarry", "server"]).unwrap();
        let Command::Server(a) = cli.command else { panic!("server") };
        assert_eq!(a.drives.paths().unwrap(), [PathBuf::from("./data")]);
        assert_eq!(a.address, "127.0.0.1:9000");
        assert_eq!(a.region, "us-east-1");
        assert!(a.drives.fsync);
        assert_eq!(a.drives.io_engine, quarry_storage::EngineKind::Uring);
    }

    #[test]
    fn flags() {
        let cli = Cli::try_parse_from([
            "quarry",
            "server",
            "/tmp/x",
            "--address",
            "0.0.0.0:1",
            "--fsync",
            "false",
            "--domain",
            "a.test,b.test",
        ])
        .unwrap();
        let Command::Server(a) = cli.command else { panic!("server") };
        assert_eq!(a.drives.paths().unwrap(), [PathBuf::from("/tmp/x")]);
        assert!(!a.drives.fsync);
        assert_eq!(a.domains, ["a.test", "b.test"]);
        let cli = Cli::try_parse_from(["quarry", "heal", "/d{1...4}", "--io-engine", "std", "--deep"]).unwrap();
        let Command::Heal(h) = cli.command else { panic!("heal") };
        assert_eq!(h.drives.paths().unwrap().len(), 4);
        assert_eq!(h.drives.io_engine, quarry_storage::EngineKind::Std);
        assert!(h.deep);
        assert!(
            Cli::try_parse_from(["quarry", "server", "/d{1...17}"])
                .unwrap()
                .command_drives()
                .unwrap()
                .paths()
                .is_err()
        );
    }

    #[test]
    fn help_renders() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
