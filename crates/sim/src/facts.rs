//! Public facts of the 3CX compromise the simulation plants, and the benign
//! background it hides them in. Versions, domains and hashes are the
//! public ones, as in the project's intel pack (`intel/3cx`).

use turncoat_core::Platform;

/// Windows builds that shipped the trojanized `ffmpeg.dll`.
pub const AFFECTED_WINDOWS: [&str; 2] = ["18.12.407", "18.12.416"];
/// macOS builds that shipped the trojanized `libffmpeg.dylib`.
pub const AFFECTED_MACOS: [&str; 4] = ["18.11.1213", "18.12.402", "18.12.407", "18.12.416"];
/// Clean builds before the compromise.
pub const CLEAN_BEFORE: [&str; 2] = ["18.10.461", "18.11.1213"];
/// The clean rebuild.
pub const FIXED: &str = "18.12.422";

pub const APP_NAME: &str = "3CX Desktop App";

pub fn affected(platform: Platform, version: &str) -> bool {
    match platform {
        Platform::Windows => AFFECTED_WINDOWS.contains(&version),
        Platform::Macos => AFFECTED_MACOS.contains(&version),
        Platform::Linux => false,
    }
}

pub const STAGING_PREFIX: &str = "https://raw.githubusercontent.com/IconStorages/images/main/";

pub const C2_DOMAINS: [&str; 20] = [
    "akamaicontainer.com",
    "akamaitechcloudservices.com",
    "azuredeploystore.com",
    "azureonlinecloud.com",
    "azureonlinestorage.com",
    "dunamistrd.com",
    "glcloudservice.com",
    "journalide.org",
    "msedgepackageinfo.com",
    "msstorageazure.com",
    "msstorageboxes.com",
    "officeaddons.com",
    "officestoragebox.com",
    "pbxcloudeservices.com",
    "pbxphonenetwork.com",
    "pbxsources.com",
    "qwepoi123098.com",
    "sourceslabs.com",
    "visualstudiofactory.com",
    "zacharryblogs.com",
];

pub const MSI_407_SHA256: &str = "aa124a4b4df12b34e74ee7f6c683b2ebec4ce9a8edcf9be345823b4fdcf5d868";
pub const MSI_416_SHA256: &str = "59e1edf4d82fae4978e97512b0331b7eb21dd4b838b850ba46794d9c7a2c0983";
pub const DMG_416_SHA256: &str = "e6bbc33815b9f20b0cf832d7401dd893fbc467c800728b5891336706da0dbcec";
pub const FFMPEG_DLL_SHA256: &str =
    "7986bbaee8940da11ce089383521ab420c443ab7b15ed42aed91fd31ce833896";
pub const D3DCOMPILER_SHA256: &str =
    "11be1803e2e307b647a8a7e02d128335c448ff741bf06bf52b332e0bbf423b03";
pub const LIBFFMPEG_SHA256: &str =
    "a64fa9f1c76457ecc58402142a8728ce34ccba378c17318b3340083eeb7acc67";
pub const ICONIC_SHA256: &str = "8ab3a5eaaf8c296080fadf56b265194681d7da5da7c02562953a4cb60e147423";

/// The vendor's own domains: the app talks to them, and they are clean.
pub const VENDOR_DOMAINS: [&str; 2] = ["www.3cx.com", "downloads-global.3cx.com"];

/// Everyday destinations, look-alikes of the C2 names among them: near
/// misses that a sloppy matcher would flag.
pub const BENIGN_DOMAINS: [&str; 24] = [
    "www.google.com",
    "update.googleapis.com",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "teams.microsoft.com",
    "graph.microsoft.com",
    "slack.com",
    "zoom.us",
    "github.com",
    "raw.githubusercontent.com",
    "objects.githubusercontent.com",
    "a248.e.akamai.net",
    "cdn.akamaized.net",
    "az764295.vo.msecnd.net",
    "officecdn.microsoft.com",
    "www.office.com",
    "akamaicontainer.net",
    "notakamaicontainer.com",
    "azureonlinestorage.co",
    "journalide.org.example.net",
    "msstorageazure.com.cdn.cloudflare.net",
    "pbx-sources.com",
    "www.wikipedia.org",
    "news.ycombinator.com",
];

/// Benign files fetched from the same host as the staging repository.
pub const BENIGN_GITHUB_PATHS: [&str; 3] = [
    "https://raw.githubusercontent.com/microsoft/vscode/main/README.md",
    "https://raw.githubusercontent.com/IconStorages/other/main/icon1.ico",
    "https://raw.githubusercontent.com/electron/electron/main/package.json",
];

pub struct Periodic {
    pub domain: &'static str,
    pub port: u16,
    pub period_s: u64,
    /// Fraction of the period added or removed at random.
    pub jitter: f64,
    pub platform: Option<Platform>,
}

/// Benign periodic traffic that looks like beaconing: update checks,
/// telemetry, time sync.
pub const PERIODIC: [Periodic; 4] = [
    Periodic {
        domain: "v10.events.data.microsoft.com",
        port: 443,
        period_s: 900,
        jitter: 0.05,
        platform: Some(Platform::Windows),
    },
    Periodic {
        domain: "time.windows.com",
        port: 123,
        period_s: 1800,
        jitter: 0.0,
        platform: Some(Platform::Windows),
    },
    Periodic {
        domain: "gateway.icloud.com",
        port: 443,
        period_s: 1200,
        jitter: 0.1,
        platform: Some(Platform::Macos),
    },
    Periodic {
        domain: "ntp.ubuntu.com",
        port: 123,
        period_s: 1024,
        jitter: 0.0,
        platform: Some(Platform::Linux),
    },
];

pub const WINDOWS_PROGRAMS: [(&str, &str, &str); 6] = [
    ("Google Chrome", "111.0.5563.65", "Google LLC"),
    ("Microsoft Teams", "1.6.00.4472", "Microsoft Corporation"),
    ("Zoom", "5.13.11", "Zoom Video Communications, Inc."),
    ("7-Zip 22.01 (x64)", "22.01", "Igor Pavlov"),
    ("Notepad++ (64-bit x64)", "8.5", "Notepad++ Team"),
    ("Mozilla Firefox (x64 en-US)", "111.0", "Mozilla"),
];

pub const MAC_APPS: [(&str, &str); 4] = [
    ("Google Chrome.app", "111.0.5563.64"),
    ("Slack.app", "4.31.155"),
    ("zoom.us.app", "5.13.11"),
    ("Microsoft Teams.app", "1.6.00.4464"),
];

pub const DEB_PACKAGES: [(&str, &str); 5] = [
    ("openssl", "3.0.11-1~deb12u2"),
    ("curl", "7.88.1-10+deb12u5"),
    ("bash", "5.2.15-2+b2"),
    ("openssh-server", "1:9.2p1-2+deb12u1"),
    ("python3", "3.11.2-1+b1"),
];

pub const WINDOWS_PROCESSES: [&str; 8] = [
    "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
    "C:\\Windows\\System32\\svchost.exe",
    "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
    "C:\\Users\\{user}\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe",
    "C:\\Windows\\System32\\cmd.exe",
    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "C:\\Windows\\explorer.exe",
    "C:\\Program Files\\Notepad++\\notepad++.exe",
];

pub const WINDOWS_DLLS: [&str; 5] = [
    "C:\\Windows\\System32\\kernel32.dll",
    "C:\\Windows\\System32\\ntdll.dll",
    "C:\\Windows\\System32\\user32.dll",
    "C:\\Windows\\System32\\crypt32.dll",
    "C:\\Windows\\System32\\winhttp.dll",
];

pub const MAC_PROCESSES: [&str; 4] = [
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Slack.app/Contents/MacOS/Slack",
    "/bin/zsh",
    "/usr/bin/curl",
];

pub const LINUX_PROCESSES: [&str; 4] = [
    "/usr/sbin/sshd",
    "/usr/bin/bash",
    "/usr/bin/python3",
    "/usr/sbin/cron",
];

pub const TENANT_NAMES: [&str; 8] = [
    "acme-corp",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark-ind",
    "wayne-ent",
    "cyberdyne",
];

pub const USERS: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
