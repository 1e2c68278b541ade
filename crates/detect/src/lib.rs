//! Detection without storage: given indicators and advisories, decide what
//! an event's observables or an endpoint's inventory match.
//!
//! - [`IndicatorIndex`] answers "which indicators does this observable
//!   match?" in a few hash lookups, whatever the number of indicators:
//!   hashes, IPs, file names and exact URLs by equality, domains by
//!   walking the name's parent suffixes, URL prefixes by host, CIDRs by
//!   masking per prefix length.
//! - [`AdvisoryIndex`] answers "is this installed product version affected?"
//!   by exact normalised name, then platform, ecosystem and version rules.
//! - [`findings`] turns matches into [`turncoat_core::Finding`]s with stable
//!   deduplication keys.

#![forbid(unsafe_code)]

pub mod beacon_score;
pub mod exposure;
pub mod findings;
pub mod ioc;

pub use exposure::{AdvisoryIndex, ExposureMatch};
pub use ioc::{IndicatorIndex, IocMatch};
