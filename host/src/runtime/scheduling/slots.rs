//! The instance pool as executions see it: a fair queue for its places. Workflow executions
//! and isolated step attempts draw from separate shares, so workflows holding every place can
//! never starve the isolated steps they wait on; loading a component's definitions draws from
//! the isolated share too.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Places for workflow executions and isolated attempts, and how many wait or are parked.
pub(crate) struct Slots {
    workflows: Semaphore,
    isolated: Semaphore,
    capacity: usize,
    /// Executions waiting for a place.
    waiting: AtomicUsize,
    /// Workflows parked in a wait, holding no place.
    pub(crate) parked: AtomicUsize,
}

/// How the pool is used right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceUsage {
    /// Instances the pool holds at most.
    pub capacity: usize,
    /// Instances live now.
    pub in_use: usize,
    /// Executions waiting for an instance.
    pub waiting: usize,
    /// Workflows parked in a durable wait, holding no instance.
    pub parked: usize,
}

impl Slots {
    /// Splits a pool of `capacity` instances: an eighth (at least one) for isolated steps and
    /// definitions, the rest (at least one) for workflow executions.
    pub(crate) fn new(capacity: u32) -> Slots {
        let capacity = (capacity as usize).max(2);
        let isolated = (capacity / 8).max(1);
        Slots {
            workflows: Semaphore::new(capacity - isolated),
            isolated: Semaphore::new(isolated),
            capacity,
            waiting: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
        }
    }

    /// A place for a workflow execution, in turn (first come, first served).
    pub(crate) async fn workflow(&self) -> SemaphorePermit<'_> {
        self.take(&self.workflows).await
    }

    /// A place for an isolated step attempt or a definitions listing.
    pub(crate) async fn isolated(&self) -> SemaphorePermit<'_> {
        self.take(&self.isolated).await
    }

    async fn take<'a>(&'a self, share: &'a Semaphore) -> SemaphorePermit<'a> {
        if let Ok(permit) = share.try_acquire() {
            return permit;
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = share.acquire().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match permit {
            Ok(permit) => permit,
            // The semaphores are never closed.
            Err(_) => unreachable!("instance slots closed"),
        }
    }

    pub(crate) fn usage(&self) -> InstanceUsage {
        let free = self.workflows.available_permits() + self.isolated.available_permits();
        InstanceUsage {
            capacity: self.capacity,
            in_use: self.capacity.saturating_sub(free),
            waiting: self.waiting.load(Ordering::Relaxed),
            parked: self.parked.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn executions_beyond_the_pool_wait_their_turn_in_order() {
        let slots = std::sync::Arc::new(Slots::new(8));
        // 7 places for workflows, 1 for isolated steps.
        let held: Vec<_> = futures_held(&slots, 7).await;
        assert_eq!(slots.usage().in_use, 7);
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move {
                let _permit = slots.workflow().await;
            })
        };
        while slots.usage().waiting == 0 {
            tokio::task::yield_now().await;
        }
        // An isolated step still gets its place while workflows hold all theirs.
        let isolated = slots.isolated().await;
        assert_eq!(slots.usage().in_use, 8);
        drop(isolated);
        drop(held);
        waiter.await.expect("the waiter got a place");
        assert_eq!(slots.usage().waiting, 0);
        assert_eq!(slots.usage().in_use, 0);
    }

    async fn futures_held(slots: &Slots, n: usize) -> Vec<SemaphorePermit<'_>> {
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(slots.workflow().await);
        }
        held
    }
}
