//! The synthetic identities tests act as: a fixed pool of users in the reserved `.invalid`
//! domain (RFC 2606: never a real user), handed out once each per run. Because the pool is
//! fixed, the runner's role grants `impersonate` on exactly these names (`resourceNames`),
//! never on every user, so the runner cannot act as anyone bound to a real role.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Every identity a run may impersonate, in the order they are handed out.
pub const POOL: &[&str] = &[
    "kfconform-user-01@kfconform.invalid",
    "kfconform-user-02@kfconform.invalid",
    "kfconform-user-03@kfconform.invalid",
    "kfconform-user-04@kfconform.invalid",
    "kfconform-user-05@kfconform.invalid",
    "kfconform-user-06@kfconform.invalid",
    "kfconform-user-07@kfconform.invalid",
    "kfconform-user-08@kfconform.invalid",
    "kfconform-user-09@kfconform.invalid",
    "kfconform-user-10@kfconform.invalid",
    "kfconform-user-11@kfconform.invalid",
    "kfconform-user-12@kfconform.invalid",
    "kfconform-user-13@kfconform.invalid",
    "kfconform-user-14@kfconform.invalid",
    "kfconform-user-15@kfconform.invalid",
    "kfconform-user-16@kfconform.invalid",
    "kfconform-user-17@kfconform.invalid",
    "kfconform-user-18@kfconform.invalid",
    "kfconform-user-19@kfconform.invalid",
    "kfconform-user-20@kfconform.invalid",
    "kfconform-user-21@kfconform.invalid",
    "kfconform-user-22@kfconform.invalid",
    "kfconform-user-23@kfconform.invalid",
    "kfconform-user-24@kfconform.invalid",
    "kfconform-user-25@kfconform.invalid",
    "kfconform-user-26@kfconform.invalid",
    "kfconform-user-27@kfconform.invalid",
    "kfconform-user-28@kfconform.invalid",
    "kfconform-user-29@kfconform.invalid",
    "kfconform-user-30@kfconform.invalid",
    "kfconform-user-31@kfconform.invalid",
    "kfconform-user-32@kfconform.invalid",
];

/// The pool of one run: each identity goes to one test (or tenant) only.
#[derive(Debug, Default)]
pub struct Identities {
    next: AtomicUsize,
}

impl Identities {
    /// The next unused identity, or why there is none.
    pub fn take(&self) -> Result<String, String> {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        POOL.get(i).map(|s| s.to_string()).ok_or_else(|| {
            format!(
                "the run needs more than the {} synthetic identities of the impersonation pool",
                POOL.len()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_distinct_reserved_and_run_out_cleanly() {
        let ids = Identities::default();
        let mut seen = std::collections::BTreeSet::new();
        for _ in POOL {
            let u = ids.take().unwrap();
            assert!(u.ends_with("@kfconform.invalid"), "{u}");
            assert!(seen.insert(u));
        }
        assert!(ids.take().unwrap_err().contains("impersonation pool"));
    }
}
