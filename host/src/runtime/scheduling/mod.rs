//! Who runs when: the instance pool's fair shares, delayed starts, and the dispatch handle
//! through which a serving node's loops drive the work they claim.

pub(crate) mod delayed;
pub(crate) mod dispatch;
pub(crate) mod slots;
