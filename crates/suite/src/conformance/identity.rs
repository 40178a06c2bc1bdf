//! The synthetic identities tests act as: a fixed pool of users in the reserved `.invalid`
//! domain (RFC 2606: never a real user), named by the part they play (`alice-03`, `mallory-01`)
//! and handed out once each per run. Because the pool is fixed, the runner's role grants
//! `impersonate` on exactly these names (`resourceNames`), never on every user, so the runner
//! cannot act as anyone bound to a real role.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The parts a synthetic user plays: tenant owners, and the profiles tests' owners,
/// contributors, strangers and role holders.
pub const ROLES: &[&str] = &[
    "tenant", "alice", "bob", "mallory", "admin", "editor", "viewer",
];

/// How many users of each part one run may use.
pub const PER_ROLE: usize = 12;

/// Every identity a run may impersonate: `<role>-NN@kfconform.invalid` for each of [`ROLES`].
pub const POOL: &[&str] = &[
    "tenant-01@kfconform.invalid",
    "tenant-02@kfconform.invalid",
    "tenant-03@kfconform.invalid",
    "tenant-04@kfconform.invalid",
    "tenant-05@kfconform.invalid",
    "tenant-06@kfconform.invalid",
    "tenant-07@kfconform.invalid",
    "tenant-08@kfconform.invalid",
    "tenant-09@kfconform.invalid",
    "tenant-10@kfconform.invalid",
    "tenant-11@kfconform.invalid",
    "tenant-12@kfconform.invalid",
    "alice-01@kfconform.invalid",
    "alice-02@kfconform.invalid",
    "alice-03@kfconform.invalid",
    "alice-04@kfconform.invalid",
    "alice-05@kfconform.invalid",
    "alice-06@kfconform.invalid",
    "alice-07@kfconform.invalid",
    "alice-08@kfconform.invalid",
    "alice-09@kfconform.invalid",
    "alice-10@kfconform.invalid",
    "alice-11@kfconform.invalid",
    "alice-12@kfconform.invalid",
    "bob-01@kfconform.invalid",
    "bob-02@kfconform.invalid",
    "bob-03@kfconform.invalid",
    "bob-04@kfconform.invalid",
    "bob-05@kfconform.invalid",
    "bob-06@kfconform.invalid",
    "bob-07@kfconform.invalid",
    "bob-08@kfconform.invalid",
    "bob-09@kfconform.invalid",
    "bob-10@kfconform.invalid",
    "bob-11@kfconform.invalid",
    "bob-12@kfconform.invalid",
    "mallory-01@kfconform.invalid",
    "mallory-02@kfconform.invalid",
    "mallory-03@kfconform.invalid",
    "mallory-04@kfconform.invalid",
    "mallory-05@kfconform.invalid",
    "mallory-06@kfconform.invalid",
    "mallory-07@kfconform.invalid",
    "mallory-08@kfconform.invalid",
    "mallory-09@kfconform.invalid",
    "mallory-10@kfconform.invalid",
    "mallory-11@kfconform.invalid",
    "mallory-12@kfconform.invalid",
    "admin-01@kfconform.invalid",
    "admin-02@kfconform.invalid",
    "admin-03@kfconform.invalid",
    "admin-04@kfconform.invalid",
    "admin-05@kfconform.invalid",
    "admin-06@kfconform.invalid",
    "admin-07@kfconform.invalid",
    "admin-08@kfconform.invalid",
    "admin-09@kfconform.invalid",
    "admin-10@kfconform.invalid",
    "admin-11@kfconform.invalid",
    "admin-12@kfconform.invalid",
    "editor-01@kfconform.invalid",
    "editor-02@kfconform.invalid",
    "editor-03@kfconform.invalid",
    "editor-04@kfconform.invalid",
    "editor-05@kfconform.invalid",
    "editor-06@kfconform.invalid",
    "editor-07@kfconform.invalid",
    "editor-08@kfconform.invalid",
    "editor-09@kfconform.invalid",
    "editor-10@kfconform.invalid",
    "editor-11@kfconform.invalid",
    "editor-12@kfconform.invalid",
    "viewer-01@kfconform.invalid",
    "viewer-02@kfconform.invalid",
    "viewer-03@kfconform.invalid",
    "viewer-04@kfconform.invalid",
    "viewer-05@kfconform.invalid",
    "viewer-06@kfconform.invalid",
    "viewer-07@kfconform.invalid",
    "viewer-08@kfconform.invalid",
    "viewer-09@kfconform.invalid",
    "viewer-10@kfconform.invalid",
    "viewer-11@kfconform.invalid",
    "viewer-12@kfconform.invalid",
];

/// The pool of one run: each identity goes to one test (or tenant) only.
#[derive(Debug, Default)]
pub struct Identities {
    taken: Mutex<BTreeMap<String, usize>>,
}

impl Identities {
    /// The next unused identity playing `role` (one of [`ROLES`]), or why there is none.
    pub fn take(&self, role: &str) -> Result<String, String> {
        if !ROLES.contains(&role) {
            return Err(format!("no synthetic users play {role:?}"));
        }
        let mut taken = self
            .taken
            .lock()
            .map_err(|_| "identity pool poisoned".to_string())?;
        let n = taken.entry(role.to_string()).or_default();
        *n += 1;
        if *n > PER_ROLE {
            return Err(format!(
                "the run needs more than the {PER_ROLE} synthetic {role} users of the \
                 impersonation pool"
            ));
        }
        Ok(format!("{role}-{n:02}@kfconform.invalid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_distinct_pooled_and_run_out_cleanly() {
        let ids = Identities::default();
        let mut seen = std::collections::BTreeSet::new();
        for role in ROLES {
            for _ in 0..PER_ROLE {
                let u = ids.take(role).unwrap();
                assert!(POOL.contains(&u.as_str()), "{u} is not in the pool");
                assert!(seen.insert(u));
            }
            assert!(ids.take(role).unwrap_err().contains("impersonation pool"));
        }
        assert_eq!(seen.len(), POOL.len());
        assert!(ids.take("root").is_err());
    }
}
