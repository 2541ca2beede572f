//! Runtime scenarios written once and run on both storage backends, as the store contract is
//! (`store/contract/`): [`on_each_backend!`] makes each scenario a test on a fresh SQLite file
//! (`sqlite::<scenario>`) and one on a fresh database of this process's throwaway Postgres
//! cluster (`postgres::<scenario>`), so a failure names the scenario and the backend.
//!
//! A scenario is an `async fn(Backend)` of the module that invokes the macro; it gets its
//! runtime from [`Backend::harness`]. Scenarios only Postgres has (`LISTEN`/`NOTIFY`, several
//! handles on one database) stay plain tests in `hosts/postgres.rs`.

use reprise_host::store::open_store;
use reprise_host::{Durability, RuntimeOptions};

use super::Harness;

/// The database a scenario runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// A fresh SQLite file in the harness's temp dir.
    Sqlite,
    /// A fresh database of this process's Postgres cluster, named after the scenario.
    Postgres { database: &'static str },
}

impl Backend {
    /// A runtime with `options` on a fresh database of this backend.
    pub async fn harness(self, options: RuntimeOptions) -> Harness {
        self.harness_and_database(options).await.0
    }

    /// [`Backend::harness`], and the `--database` argument that names its database to the CLI.
    pub async fn harness_and_database(self, options: RuntimeOptions) -> (Harness, String) {
        match self {
            Backend::Sqlite => {
                let harness = Harness::new(options).await;
                let path = harness.db_path().display().to_string();
                (harness, path)
            }
            Backend::Postgres { database } => {
                let url = super::postgres::database(database).await;
                let store = open_store(&url, Durability::Synced)
                    .await
                    .expect("open postgres store");
                (Harness::with_store(store, options).await, url)
            }
        }
    }
}

/// One test per scenario per backend: `sqlite::<scenario>` and `postgres::<scenario>`, each
/// calling the invoking module's `async fn <scenario>(Backend)`.
macro_rules! on_each_backend {
    ($($scenario:ident),* $(,)?) => {
        pub(crate) mod sqlite {
            $(
                #[tokio::test]
                pub(crate) async fn $scenario() {
                    super::$scenario($crate::common::backend::Backend::Sqlite).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let database = stringify!($scenario);
                    super::$scenario($crate::common::backend::Backend::Postgres { database })
                        .await;
                }
            )*
        }
    };
}

pub(crate) use on_each_backend;
