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

/// The Sigma service of a Windows event log channel.
pub fn windows_service(channel: &str) -> Option<&'static str> {
    let c = channel.to_ascii_lowercase();
    Some(match c.as_str() {
        "security" => "security",
        "system" => "system",
        "application" => "application",
        "microsoft-windows-sysmon/operational" => "sysmon",
        "microsoft-windows-powershell/operational" => "powershell",
        "windows powershell" => "powershell-classic",
        "microsoft-windows-windows defender/operational" => "windefend",
        "microsoft-windows-taskscheduler/operational" => "taskscheduler",
        "microsoft-windows-wmi-activity/operational" => "wmi",
        "microsoft-windows-dns-client/operational" => "dns-client",
        "microsoft-windows-bits-client/operational" => "bits-client",
        "microsoft-windows-codeintegrity/operational" => "codeintegrity-operational",
        "microsoft-windows-applocker/exe and dll" => "applocker",
        "microsoft-windows-windows firewall with advanced security/firewall" => "firewall-as",
        "microsoft-windows-terminalservices-localsessionmanager/operational" => {
            "terminalservices-localsessionmanager"
        }
        "microsoft-windows-ntlm/operational" => "ntlm",
        "microsoft-windows-smbclient/security" => "smbclient-security",
        "microsoft-windows-appxdeployment-server/operational" => "appxdeployment-server",
        "microsoft-windows-shell-core/operational" => "shell-core",
        "microsoft-windows-openssh/operational" => "openssh",
        _ => return None,
    })
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
}
