//! Exposure: which advisories cover an installed product version.

use std::collections::HashMap;

use turncoat_core::advisory::product_lookup_key;
use turncoat_core::{Advisory, InventoryItem};

/// One advisory entry covering one installed item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExposureMatch {
    /// Index into [`AdvisoryIndex::advisories`].
    pub advisory: usize,
    /// Index into that advisory's `affected`.
    pub affected: usize,
}

/// Advisories indexed by the lookup key of every product name they cover.
#[derive(Default)]
pub struct AdvisoryIndex {
    advisories: Vec<Advisory>,
    by_name: HashMap<String, Vec<ExposureMatch>>,
}

impl AdvisoryIndex {
    pub fn new(advisories: Vec<Advisory>) -> AdvisoryIndex {
        let mut by_name: HashMap<String, Vec<ExposureMatch>> = HashMap::new();
        for (ai, a) in advisories.iter().enumerate() {
            for (fi, f) in a.affected.iter().enumerate() {
                for name in f.lookup_keys() {
                    by_name.entry(name).or_default().push(ExposureMatch {
                        advisory: ai,
                        affected: fi,
                    });
                }
            }
        }
        AdvisoryIndex {
            advisories,
            by_name,
        }
    }

    pub fn advisories(&self) -> &[Advisory] {
        &self.advisories
    }

    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    /// Every advisory entry that covers `item`, one per advisory.
    pub fn matches(&self, item: &InventoryItem) -> Vec<ExposureMatch> {
        let mut out: Vec<ExposureMatch> = Vec::new();
        if let Some(candidates) = self.by_name.get(&product_lookup_key(&item.name)) {
            for m in candidates {
                let affected = &self.advisories[m.advisory].affected[m.affected];
                if affected.matches(&item.name, &item.version, item.platform, item.ecosystem)
                    && !out.iter().any(|o| o.advisory == m.advisory)
                {
                    out.push(*m);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use turncoat_core::{Affected, Ecosystem, Platform, Severity, VersionRange};

    fn advisory() -> Advisory {
        Advisory {
            id: "TC-2023-0001".into(),
            title: "3CX".into(),
            published: None,
            references: vec![],
            campaign: None,
            severity: Severity::Critical,
            affected: vec![
                Affected {
                    product: "3CX Desktop App".into(),
                    vendor: None,
                    names: vec!["3CXDesktopApp".into()],
                    platforms: vec![Platform::Windows],
                    ecosystem: Ecosystem::Generic,
                    versions: vec!["18.12.407".into(), "18.12.416".into()],
                    ranges: vec![],
                },
                Affected {
                    product: "3CX Desktop App".into(),
                    vendor: None,
                    names: vec![],
                    platforms: vec![Platform::Macos],
                    ecosystem: Ecosystem::Generic,
                    versions: vec![],
                    ranges: vec![VersionRange {
                        introduced: Some("18.11.1213".into()),
                        fixed: Some("18.12.422".into()),
                        last_affected: None,
                    }],
                },
            ],
            indicators: vec![],
            malicious: false,
        }
    }

    fn item(name: &str, version: &str, platform: Platform) -> InventoryItem {
        InventoryItem {
            name: name.into(),
            version: version.into(),
            vendor: None,
            platform: Some(platform),
            ecosystem: Ecosystem::Generic,
        }
    }

    #[test]
    fn matches_by_platform_and_version() {
        let index = AdvisoryIndex::new(vec![advisory()]);
        assert_eq!(
            index
                .matches(&item("3CX Desktop App", "18.12.416", Platform::Windows))
                .len(),
            1
        );
        assert_eq!(
            index.matches(&item("3CX Desktop App.app", "18.12.402", Platform::Macos))[0].affected,
            1
        );
        assert!(
            index
                .matches(&item("3CX Desktop App", "18.12.422", Platform::Windows))
                .is_empty()
        );
        assert!(
            index
                .matches(&item("3CX Desktop App", "18.12.402", Platform::Windows))
                .is_empty()
        );
        assert!(
            index
                .matches(&item(
                    "3CX Phone System Management Console",
                    "18.12.416",
                    Platform::Windows
                ))
                .is_empty()
        );
    }
}
