//! Sigma logsources for the records the readers produce.
//!
//! Windows events are routed by provider or channel and event id as the
//! SigmaHQ logsource conventions describe (Sysmon ids to categories,
//! Security/System/PowerShell channels to services); ECS events by
//! `event.category` and `event.type`; Zeek by log path.

use turncoat_core::Logsource;

pub const SYSMON_PROVIDER: &str = "Microsoft-Windows-Sysmon";

/// The Sigma category of a Sysmon event id.
pub fn sysmon_category(event_id: i64) -> Option<&'static str> {
    Some(match event_id {
        1 => "process_creation",
        2 => "file_change",
        3 => "network_connection",
        4 => "sysmon_status",
        5 => "process_termination",
        6 => "driver_load",
        7 => "image_load",
        8 => "create_remote_thread",
        9 => "raw_access_thread",
        10 => "process_access",
        11 => "file_event",
        12 => "registry_add",
        13 => "registry_set",
        14 => "registry_rename",
        15 => "create_stream_hash",
        16 => "sysmon_status",
        17 | 18 => "pipe_created",
        19..=21 => "wmi_event",
        22 => "dns_query",
        23 => "file_delete",
        24 => "clipboard_capture",
        25 => "process_tampering",
        26 => "file_delete_detected",
        27 => "file_block_executable",
        28 => "file_block_shredding",
        29 => "file_executable_detected",
        255 => "sysmon_error",
        _ => return None,
    })
}

/// Windows event log channels (lowercase) and the Sigma `service` each is
/// filed under: the Windows table of the Sigma taxonomy appendix. A
/// service may span several channels (AppLocker's four, PowerShell's
/// Windows and Core logs).
const WINDOWS_CHANNELS: &[(&str, &str)] = &[
    ("security", "security"),
    ("system", "system"),
    ("application", "application"),
    ("microsoft-windows-sysmon/operational", "sysmon"),
    ("microsoft-windows-powershell/operational", "powershell"),
    ("powershellcore/operational", "powershell"),
    ("windows powershell", "powershell-classic"),
    (
        "microsoft-windows-windows defender/operational",
        "windefend",
    ),
    (
        "microsoft-windows-taskscheduler/operational",
        "taskscheduler",
    ),
    ("microsoft-windows-wmi-activity/operational", "wmi"),
    ("microsoft-windows-dns-client/operational", "dns-client"),
    ("dns server", "dns-server"),
    ("microsoft-windows-dns-server/audit", "dns-server-audit"),
    (
        "microsoft-windows-dns-server/analytical",
        "dns-server-analytic",
    ),
    ("microsoft-windows-dhcp-server/operational", "dhcp"),
    ("microsoft-windows-bits-client/operational", "bits-client"),
    (
        "microsoft-windows-codeintegrity/operational",
        "codeintegrity-operational",
    ),
    ("microsoft-windows-applocker/exe and dll", "applocker"),
    ("microsoft-windows-applocker/msi and script", "applocker"),
    (
        "microsoft-windows-applocker/packaged app-deployment",
        "applocker",
    ),
    (
        "microsoft-windows-applocker/packaged app-execution",
        "applocker",
    ),
    (
        "microsoft-windows-windows firewall with advanced security/firewall",
        "firewall-as",
    ),
    (
        "microsoft-windows-terminalservices-localsessionmanager/operational",
        "terminalservices-localsessionmanager",
    ),
    ("microsoft-windows-ntlm/operational", "ntlm"),
    ("microsoft-windows-smbclient/security", "smbclient-security"),
    (
        "microsoft-windows-smbclient/connectivity",
        "smbclient-connectivity",
    ),
    ("microsoft-windows-smbserver/security", "smbserver-security"),
    (
        "microsoft-windows-smbserver/connectivity",
        "smbserver-connectivity",
    ),
    (
        "microsoft-windows-appxdeploymentserver/operational",
        "appxdeployment-server",
    ),
    (
        "microsoft-windows-appxpackaging/operational",
        "appxpackaging-om",
    ),
    (
        "microsoft-windows-appmodel-runtime/admin",
        "appmodel-runtime",
    ),
    ("microsoft-windows-shell-core/operational", "shell-core"),
    ("openssh/operational", "openssh"),
    ("msexchange management", "msexchange-management"),
    (
        "microsoft-iis-configuration/operational",
        "iis-configuration",
    ),
    (
        "microsoft-windows-security-mitigations/kernel mode",
        "security-mitigations",
    ),
    (
        "microsoft-windows-security-mitigations/user mode",
        "security-mitigations",
    ),
    ("microsoft-windows-lsa/operational", "lsa-server"),
    // The taxonomy calls it `ldap_debug`; SigmaHQ's rules say `ldap`
    // (the Sigma crate reads the one as the other).
    ("microsoft-windows-ldap-client/debug", "ldap"),
    (
        "microsoft-windows-driverframeworks-usermode/operational",
        "driver-framework",
    ),
    ("microsoft-windows-capi2/operational", "capi2"),
    (
        "microsoft-windows-certificateservicesclient-lifecycle-system/operational",
        "certificateservicesclient-lifecycle-system",
    ),
    (
        "microsoft-windows-diagnosis-scripted/operational",
        "diagnosis-scripted",
    ),
    ("microsoft-servicebus-client", "microsoft-servicebus-client"),
    ("microsoft-windows-printservice/admin", "printservice-admin"),
    (
        "microsoft-windows-printservice/operational",
        "printservice-operational",
    ),
    (
        "microsoft-windows-bitlocker/bitlocker management",
        "bitlocker",
    ),
    ("microsoft-windows-vhdmp/operational", "vhdmp"),
    ("microsoft-windows-sense/operational", "sense"),
    (
        "microsoft-windows-kernel-eventtracing/admin",
        "kernel-event-tracing",
    ),
    ("microsoft-windows-hyper-v-worker-admin", "hyper-v-worker"),
];

/// The Sigma service of a Windows event log channel.
pub fn windows_service(channel: &str) -> Option<&'static str> {
    WINDOWS_CHANNELS
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(channel))
        .map(|&(_, s)| s)
}

/// The channels filed under a Sigma service (empty for one no Windows log
/// is filed under).
pub fn windows_channels(service: &str) -> impl Iterator<Item = &'static str> + '_ {
    WINDOWS_CHANNELS
        .iter()
        .filter(move |(_, s)| s.eq_ignore_ascii_case(service))
        .map(|&(c, _)| c)
}

/// Categories of Windows events besides Sysmon's (see [`windows`]).
const WINDOWS_CATEGORIES: &[&str] = &[
    "ps_script",
    "ps_module",
    "ps_classic_start",
    "ps_classic_provider_start",
    "ps_classic_script",
    "registry_delete",
    // Sigma's umbrella over the registry categories.
    "registry_event",
];

/// Whether some reader can produce an event of this Sigma logsource: a
/// rule written for one that cannot will never fire, and is reported when
/// it is loaded instead of sitting silent.
pub fn producible(product: Option<&str>, category: Option<&str>, service: Option<&str>) -> bool {
    let is = |got: Option<&str>, want: &str| got.is_none_or(|g| g.eq_ignore_ascii_case(want));
    let windows_category = |c: &str| {
        (0..=255).any(|id| sysmon_category(id).is_some_and(|s| s.eq_ignore_ascii_case(c)))
            || WINDOWS_CATEGORIES.iter().any(|w| w.eq_ignore_ascii_case(c))
            || c.eq_ignore_ascii_case("process_creation")
    };
    let windows = is(product, "windows")
        && category.is_none_or(windows_category)
        && service.is_none_or(|s| windows_channels(s).next().is_some());
    let ecs = ["windows", "linux", "macos"].iter().any(|p| is(product, p))
        && service.is_none()
        && category.is_none_or(|c| {
            crate::ecs::CATEGORIES
                .iter()
                .any(|e| e.eq_ignore_ascii_case(c))
        });
    // Zeek's reader files any log under its path.
    let zeek = is(product, "zeek") && category.is_none();
    windows || ecs || zeek
}

/// Sigma's logsource for a Windows event with this provider, channel and id.
///
/// Sysmon events get their category (`process_creation`, ...) and service
/// `sysmon`; PowerShell script block and module events their categories;
/// Security 4688 is also `process_creation` (its fields are renamed by
/// the Windows reader); everything else gets the channel's service.
pub fn windows(provider: Option<&str>, channel: Option<&str>, event_id: Option<i64>) -> Logsource {
    let service = channel.and_then(windows_service);
    let is_sysmon = provider == Some(SYSMON_PROVIDER) || service == Some("sysmon");
    let category = match (is_sysmon, event_id, service) {
        (true, Some(id), _) => sysmon_category(id),
        (false, Some(4688), Some("security")) => Some("process_creation"),
        (false, Some(4104), Some("powershell")) => Some("ps_script"),
        (false, Some(4103), Some("powershell")) => Some("ps_module"),
        (false, Some(400), Some("powershell-classic")) => Some("ps_classic_start"),
        (false, Some(600), Some("powershell-classic")) => Some("ps_classic_provider_start"),
        (false, Some(800), Some("powershell-classic")) => Some("ps_classic_script"),
        _ => None,
    };
    Logsource::fixed(
        Some("windows"),
        category,
        if is_sysmon { Some("sysmon") } else { service },
    )
}

/// Sysmon files key and value deletions under event 12 with creations;
/// Sigma tells them apart by `EventType`.
pub fn refine(logsource: &mut Logsource, fields: &turncoat_core::Fields) {
    if logsource.category.as_deref() == Some("registry_add")
        && fields
            .get_str("EventType")
            .is_some_and(|t| t.starts_with("Delete"))
    {
        logsource.category = Some("registry_delete".into());
    }
}

/// Sigma's names for Security 4688's fields, as the SigmaHQ conventions map
/// them onto Sysmon's process creation.
pub fn security_4688_field(name: &str) -> Option<&'static str> {
    Some(match name {
        "NewProcessName" => "Image",
        "ParentProcessName" => "ParentImage",
        "NewProcessId" => "ProcessId",
        "ProcessId" => "ParentProcessId",
        "SubjectUserName" => "User",
        "MandatoryLabel" => "IntegrityLevel",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_windows_events() {
        let l = windows(
            Some(SYSMON_PROVIDER),
            Some("Microsoft-Windows-Sysmon/Operational"),
            Some(22),
        );
        assert_eq!(l.category.as_deref(), Some("dns_query"));
        assert_eq!(l.service.as_deref(), Some("sysmon"));
        let l = windows(
            Some("Microsoft-Windows-Security-Auditing"),
            Some("Security"),
            Some(4688),
        );
        assert_eq!(l.category.as_deref(), Some("process_creation"));
        assert_eq!(l.service.as_deref(), Some("security"));
        let l = windows(None, Some("System"), Some(7045));
        assert_eq!((l.category, l.service.as_deref()), (None, Some("system")));
    }

    #[test]
    fn every_windows_service_round_trips_through_its_channels() {
        for &(channel, service) in WINDOWS_CHANNELS {
            assert_eq!(channel, channel.to_ascii_lowercase());
            let l = windows(None, Some(&channel.to_uppercase()), Some(1));
            assert_eq!(l.service.as_deref(), Some(service), "{channel}");
            assert!(windows_channels(service).any(|c| c == channel));
        }
        let l = windows(None, Some("DNS Server"), Some(150));
        assert_eq!(l.service.as_deref(), Some("dns-server"));
        let l = windows(None, Some("Windows PowerShell"), Some(800));
        assert_eq!(l.category.as_deref(), Some("ps_classic_script"));
    }

    #[test]
    fn producible_logsources() {
        let yes = [
            (Some("windows"), None, Some("dns-server")),
            (Some("windows"), Some("process_creation"), None),
            (Some("windows"), Some("ps_script"), None),
            (Some("linux"), Some("process_creation"), None),
            (Some("macos"), Some("file_event"), None),
            (None, Some("proxy"), None),
            (Some("windows"), Some("registry_event"), None),
            (Some("zeek"), None, Some("dns")),
            (Some("Windows"), None, Some("Security")),
        ];
        for (p, c, s) in yes {
            assert!(producible(p, c, s), "{p:?} {c:?} {s:?}");
        }
        let no = [
            (Some("aws"), None, Some("cloudtrail")),
            (Some("linux"), None, Some("auditd")),
            (Some("windows"), None, Some("no-such-service")),
            (Some("windows"), Some("file_access"), None),
            (Some("linux"), Some("registry_set"), None),
            (None, Some("firewall"), None),
            (Some("zeek"), Some("dns"), None),
        ];
        for (p, c, s) in no {
            assert!(!producible(p, c, s), "{p:?} {c:?} {s:?}");
        }
    }
}
