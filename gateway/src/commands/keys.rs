//! `switchboard keys create|list|revoke`: API keys managed in the database directly, for
//! bootstrapping (the first admin key) and scripts. The server picks changes up within
//! the key cache's 5 s.

use crate::auth::{Scopes, keys::valid_tenant_id};
use crate::cli::{KeysAction, StoreArgs};
use crate::store::{Store, now_ms};

pub fn run(action: KeysAction, store: &StoreArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let url = store.url();
        let store = Store::open(&url).await.map_err(|e| {
            anyhow::anyhow!(
                "opening the {} database: {e}",
                crate::store::backend_of(&url)
            )
        })?;
        match action {
            KeysAction::Create {
                tenant,
                name,
                scopes,
                expires_in_days,
            } => {
                if !valid_tenant_id(&tenant) {
                    anyhow::bail!(
                        "tenant '{tenant}': use 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit"
                    );
                }
                let scopes = Scopes::parse(&scopes).map_err(|e| anyhow::anyhow!(e))?;
                if scopes == Scopes::default() {
                    anyhow::bail!("a key needs at least one scope");
                }
                store.create_tenant(&tenant, &tenant).await?;
                let expires_at =
                    expires_in_days.map(|d| now_ms() + i64::from(d) * 86_400_000);
                let (key, stored) =
                    crate::tenants::create_key(&store, &tenant, &name, scopes, expires_at)
                        .await?;
                eprintln!(
                    "created {} for tenant '{}' with scopes: {} (shown once; keep it safe)",
                    stored.id, stored.tenant, stored.scopes
                );
                println!("{key}");
            }
            KeysAction::List { tenant } => {
                let keys = store.list_keys(&tenant).await?;
                println!("{}", serde_json::to_string_pretty(&keys)?);
            }
            KeysAction::Revoke { id } => {
                let tenant = match store.key_by_id(&id).await? {
                    Some(k) => k.tenant,
                    None => anyhow::bail!("no key '{id}'"),
                };
                if !store.revoke_key(&tenant, &id).await? {
                    anyhow::bail!("key '{id}' was already revoked");
                }
                eprintln!("revoked {id} (tenant '{tenant}')");
            }
        }
        Ok(())
    })
}
