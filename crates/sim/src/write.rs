//! Writers for the formats the simulator emits, by hand: the simulator
//! must stream millions of records, and each line's shape is fixed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use turncoat_core::time::MICROS_PER_SEC;
use turncoat_core::{Platform, Time};

use crate::facts::{APP_NAME, DEB_PACKAGES, MAC_APPS, WINDOWS_PROGRAMS};
use crate::truth::EventCounts;
use crate::{Config, Host, Rng, at, day_start};

/// One network flow as both an endpoint agent and a sensor see it.
pub struct Conn<'a> {
    pub domain: &'a str,
    pub ip: &'a str,
    pub port: u16,
    pub orig_bytes: u64,
    pub resp_bytes: u64,
}

/// A tenant's output files.
pub struct TenantWriter {
    ecs: BufWriter<File>,
    osquery: BufWriter<File>,
    conn: BufWriter<File>,
    dns: BufWriter<File>,
    http: BufWriter<File>,
    ssl: BufWriter<File>,
    dhcp: BufWriter<File>,
    pub counts: EventCounts,
    uid: u64,
    line: String,
}

const ZEEK_CONN: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents";
const ZEEK_CONN_TYPES: &str = "time\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]";
const ZEEK_DNS: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\tquery\tqtype_name\trcode_name\tanswers\tTTLs";
const ZEEK_DNS_TYPES: &str = "time\tstring\taddr\tport\taddr\tport\tenum\tcount\tstring\tstring\tstring\tvector[string]\tvector[interval]";
const ZEEK_HTTP: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tmethod\thost\turi\tuser_agent\tstatus_code\tresp_mime_types";
const ZEEK_HTTP_TYPES: &str =
    "time\tstring\taddr\tport\taddr\tport\tstring\tstring\tstring\tstring\tcount\tvector[string]";
const ZEEK_SSL: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tversion\tcipher\tserver_name\testablished";
const ZEEK_SSL_TYPES: &str = "time\tstring\taddr\tport\taddr\tport\tstring\tstring\tstring\tbool";
const ZEEK_DHCP: &str =
    "ts\tuids\tclient_addr\tserver_addr\tmac\thost_name\tassigned_addr\tlease_time";
const ZEEK_DHCP_TYPES: &str = "time\tset[string]\taddr\taddr\tstring\tstring\taddr\tinterval";

fn zeek_file(dir: &Path, path: &str, fields: &str, types: &str) -> io::Result<BufWriter<File>> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(dir.join(format!("{path}.log")))?);
    write!(
        w,
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n#open\t2023-03-08-00-00-00\n#fields\t{fields}\n#types\t{types}\n"
    )?;
    Ok(w)
}

/// Appends `s` as a JSON string literal.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn zeek_ts(t: Time) -> String {
    format!(
        "{}.{:06}",
        t.0.div_euclid(MICROS_PER_SEC),
        t.0.rem_euclid(MICROS_PER_SEC)
    )
}

fn os_family(p: Platform) -> &'static str {
    p.as_str()
}

impl TenantWriter {
    pub fn create(dir: &Path) -> io::Result<TenantWriter> {
        let zeek = dir.join("zeek");
        std::fs::create_dir_all(&zeek)?;
        Ok(TenantWriter {
            ecs: BufWriter::with_capacity(1 << 20, File::create(dir.join("ecs.ndjson"))?),
            osquery: BufWriter::new(File::create(dir.join("osquery.log"))?),
            conn: zeek_file(&zeek, "conn", ZEEK_CONN, ZEEK_CONN_TYPES)?,
            dns: zeek_file(&zeek, "dns", ZEEK_DNS, ZEEK_DNS_TYPES)?,
            http: zeek_file(&zeek, "http", ZEEK_HTTP, ZEEK_HTTP_TYPES)?,
            ssl: zeek_file(&zeek, "ssl", ZEEK_SSL, ZEEK_SSL_TYPES)?,
            dhcp: zeek_file(&zeek, "dhcp", ZEEK_DHCP, ZEEK_DHCP_TYPES)?,
            counts: EventCounts::default(),
            uid: 0,
            line: String::with_capacity(1024),
        })
    }

    pub fn finish(&mut self) -> io::Result<()> {
        for w in [
            &mut self.ecs,
            &mut self.osquery,
            &mut self.conn,
            &mut self.dns,
            &mut self.http,
            &mut self.ssl,
            &mut self.dhcp,
        ] {
            w.flush()?;
        }
        Ok(())
    }

    fn next_uid(&mut self) -> String {
        self.uid += 1;
        format!("C{:016x}", self.uid.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// Starts an ECS document with the fields every event carries.
    fn ecs_begin(&mut self, t: Time, h: &Host, category: &str, ty: &str) {
        self.line.clear();
        self.line.push_str("{\"@timestamp\":\"");
        self.line.push_str(&t.to_string());
        self.line.push_str("\",\"host\":{\"name\":");
        json_str(&mut self.line, &h.name);
        self.line.push_str(",\"ip\":[\"");
        self.line.push_str(&h.ip);
        self.line.push_str("\"],\"os\":{\"family\":\"");
        self.line.push_str(os_family(h.platform));
        self.line.push_str(
            "\"}},\"agent\":{\"type\":\"endpoint\"},\"event\":{\"kind\":\"event\",\"category\":[\"",
        );
        self.line.push_str(category);
        self.line.push_str("\"],\"type\":[\"");
        self.line.push_str(ty);
        self.line.push_str("\"]}");
    }

    fn ecs_field(&mut self, path: &str, value: &str) {
        self.line.push_str(",\"");
        self.line.push_str(path);
        self.line.push_str("\":");
        json_str(&mut self.line, value);
    }

    fn ecs_end(&mut self) -> io::Result<()> {
        self.line.push_str("}\n");
        self.ecs.write_all(self.line.as_bytes())?;
        self.counts.ecs += 1;
        Ok(())
    }

    fn process(&mut self, image: Option<&str>) {
        if let Some(image) = image {
            self.line.push_str(",\"process\":{\"executable\":");
            json_str(&mut self.line, image);
            self.line.push('}');
        }
    }

    pub fn process_start(
        &mut self,
        t: Time,
        h: &Host,
        image: &str,
        sha256: &str,
    ) -> io::Result<()> {
        self.ecs_begin(t, h, "process", "start");
        let parent = match h.platform {
            Platform::Windows => "C:\\Windows\\explorer.exe",
            Platform::Macos => "/sbin/launchd",
            Platform::Linux => "/usr/lib/systemd/systemd",
        };
        let name = image.rsplit(['\\', '/']).next().unwrap_or(image);
        self.line.push_str(",\"process\":{\"executable\":");
        json_str(&mut self.line, image);
        self.line.push_str(",\"name\":");
        json_str(&mut self.line, name);
        self.line.push_str(",\"command_line\":");
        json_str(&mut self.line, &format!("\"{image}\""));
        self.line.push_str(",\"hash\":{\"sha256\":\"");
        self.line.push_str(sha256);
        self.line.push_str("\"},\"parent\":{\"executable\":");
        json_str(&mut self.line, parent);
        self.line.push_str("}}");
        self.ecs_field("user.name", h.user);
        self.ecs_end()
    }

    pub fn image_load(
        &mut self,
        t: Time,
        h: &Host,
        image: &str,
        module: &str,
        sha256: &str,
    ) -> io::Result<()> {
        self.ecs_begin(t, h, "library", "start");
        self.process(Some(image));
        self.line.push_str(",\"dll\":{\"path\":");
        json_str(&mut self.line, module);
        self.line.push_str(",\"hash\":{\"sha256\":\"");
        self.line.push_str(sha256);
        self.line.push_str("\"}}");
        self.ecs_end()
    }

    pub fn file_create(&mut self, t: Time, h: &Host, path: &str, sha256: &str) -> io::Result<()> {
        self.ecs_begin(t, h, "file", "creation");
        self.line.push_str(",\"file\":{\"path\":");
        json_str(&mut self.line, path);
        self.line.push_str(",\"hash\":{\"sha256\":\"");
        self.line.push_str(sha256);
        self.line.push_str("\"}}");
        self.ecs_end()
    }

    pub fn dns(
        &mut self,
        t: Time,
        h: &Host,
        domain: &str,
        ip: &str,
        rng: &mut Rng,
    ) -> io::Result<()> {
        self.dns_from(t, h, None, domain, ip, rng)
    }

    /// A DNS lookup, seen by the endpoint agent and by the sensor.
    pub fn dns_from(
        &mut self,
        t: Time,
        h: &Host,
        image: Option<&str>,
        domain: &str,
        ip: &str,
        rng: &mut Rng,
    ) -> io::Result<()> {
        self.ecs_begin(t, h, "network", "protocol");
        self.process(image);
        self.line.push_str(",\"dns\":{\"question\":{\"name\":");
        json_str(&mut self.line, domain);
        self.line
            .push_str(",\"type\":\"A\"},\"answers\":[{\"data\":\"");
        self.line.push_str(ip);
        self.line.push_str("\",\"type\":\"A\"}]}");
        self.ecs_end()?;
        self.sensor_dns(t, h, domain, ip, rng)
    }

    /// A DNS lookup only the network sensor sees.
    pub fn sensor_dns(
        &mut self,
        t: Time,
        h: &Host,
        domain: &str,
        ip: &str,
        rng: &mut Rng,
    ) -> io::Result<()> {
        let uid = self.next_uid();
        writeln!(
            self.dns,
            "{}\t{uid}\t{}\t{}\t{}\t53\tudp\t{}\t{domain}\tA\tNOERROR\t{ip}\t300.000000",
            zeek_ts(Time(t.0 + 2_000)),
            h.ip,
            rng.range(49152, 65535),
            resolver(h),
            rng.range(1, 65535)
        )?;
        self.counts.zeek += 1;
        Ok(())
    }

    /// An outbound connection, seen by the endpoint agent and the sensor.
    pub fn connection(
        &mut self,
        t: Time,
        h: &Host,
        image: Option<&str>,
        c: &Conn,
        rng: &mut Rng,
    ) -> io::Result<()> {
        self.ecs_begin(t, h, "network", "connection");
        self.process(image);
        self.line.push_str(",\"destination\":{\"ip\":\"");
        self.line.push_str(c.ip);
        self.line.push_str("\",\"port\":");
        self.line.push_str(&c.port.to_string());
        self.line.push_str(",\"domain\":");
        json_str(&mut self.line, c.domain);
        self.line.push_str("},\"source\":{\"ip\":\"");
        self.line.push_str(&h.ip);
        self.line
            .push_str("\"},\"network\":{\"transport\":\"tcp\",\"direction\":\"egress\"}");
        self.ecs_end()?;
        self.sensor_connection(t, h, c, rng)
    }

    /// A connection only the network sensor sees (conn, plus ssl for TLS).
    pub fn sensor_connection(
        &mut self,
        t: Time,
        h: &Host,
        c: &Conn,
        rng: &mut Rng,
    ) -> io::Result<()> {
        let uid = self.next_uid();
        let sport = rng.range(49152, 65535);
        let (proto, service) = if c.port == 123 {
            ("udp", "ntp")
        } else {
            ("tcp", "ssl")
        };
        let history = if proto == "udp" { "Dd" } else { "ShADadFf" };
        writeln!(
            self.conn,
            "{}\t{uid}\t{}\t{sport}\t{}\t{}\t{proto}\t{service}\t{:.6}\t{}\t{}\tSF\tT\tF\t0\t{history}\t{}\t{}\t{}\t{}\t(empty)",
            zeek_ts(t),
            h.ip,
            c.ip,
            c.port,
            rng.range(20, 3000) as f64 / 1000.0,
            c.orig_bytes,
            c.resp_bytes,
            c.orig_bytes / 500 + 3,
            c.orig_bytes + 200,
            c.resp_bytes / 1000 + 3,
            c.resp_bytes + 200
        )?;
        self.counts.zeek += 1;
        if c.port == 443 {
            writeln!(
                self.ssl,
                "{}\t{uid}\t{}\t{sport}\t{}\t443\tTLSv13\tTLS_AES_128_GCM_SHA256\t{}\tT",
                zeek_ts(Time(t.0 + 30_000)),
                h.ip,
                c.ip,
                c.domain
            )?;
            self.counts.zeek += 1;
        }
        Ok(())
    }

    pub fn web(&mut self, t: Time, h: &Host, url: &str, rng: &mut Rng) -> io::Result<()> {
        self.web_from(t, h, None, url, rng)
    }

    /// A web request: the agent sees the URL; the sensor sees TLS to the
    /// host (or, over plain HTTP, the request itself).
    pub fn web_from(
        &mut self,
        t: Time,
        h: &Host,
        image: Option<&str>,
        url: &str,
        rng: &mut Rng,
    ) -> io::Result<()> {
        let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        self.ecs_begin(t, h, "web", "access");
        self.process(image);
        self.line.push_str(",\"url\":{\"full\":");
        json_str(&mut self.line, url);
        self.line.push_str(",\"domain\":");
        json_str(&mut self.line, host);
        self.line.push_str(",\"path\":");
        json_str(&mut self.line, path);
        self.line
            .push_str("},\"http\":{\"request\":{\"method\":\"GET\"}}");
        self.ecs_end()?;
        let ip = crate::resolve(host);
        if scheme == "http" {
            let uid = self.next_uid();
            writeln!(
                self.http,
                "{}\t{uid}\t{}\t{}\t{ip}\t80\tGET\t{host}\t{path}\tMozilla/5.0\t200\ttext/html",
                zeek_ts(t),
                h.ip,
                rng.range(49152, 65535)
            )?;
            self.counts.zeek += 1;
            Ok(())
        } else {
            let c = Conn {
                domain: host,
                ip: &ip,
                port: 443,
                orig_bytes: rng.range(500, 2000),
                resp_bytes: rng.range(2000, 200_000),
            };
            self.sensor_connection(t, h, &c, rng)
        }
    }

    pub fn dhcp_lease(&mut self, t: Time, h: &Host) -> io::Result<()> {
        let uid = self.next_uid();
        writeln!(
            self.dhcp,
            "{}\t{uid}\t{}\t{}\t{}\t{}\t{}\t86400.000000",
            zeek_ts(t),
            h.ip,
            dhcp_server(h),
            h.mac,
            h.name,
            h.ip
        )?;
        self.counts.zeek += 1;
        Ok(())
    }

    fn osquery_row(
        &mut self,
        t: Time,
        h: &Host,
        table: &str,
        columns: &str,
        action: &str,
    ) -> io::Result<()> {
        let mut host = String::new();
        json_str(&mut host, &h.name);
        writeln!(
            self.osquery,
            "{{\"name\":\"pack_inventory_{table}\",\"hostIdentifier\":{host},\"calendarTime\":\"{t}\",\"unixTime\":{},\"epoch\":0,\"counter\":1,\"numerics\":false,\"columns\":{columns},\"action\":\"{action}\"}}",
            t.0.div_euclid(MICROS_PER_SEC)
        )?;
        self.counts.osquery += 1;
        Ok(())
    }

    fn product_row(
        &mut self,
        t: Time,
        h: &Host,
        name: &str,
        version: &str,
        vendor: &str,
        action: &str,
    ) -> io::Result<()> {
        let mut n = String::new();
        json_str(&mut n, name);
        let mut vd = String::new();
        json_str(&mut vd, vendor);
        match h.platform {
            Platform::Windows => self.osquery_row(
                t,
                h,
                "programs",
                &format!("{{\"name\":{n},\"version\":\"{version}\",\"publisher\":{vd},\"install_location\":\"\"}}"),
                action,
            ),
            Platform::Macos => {
                let mut app = String::new();
                json_str(&mut app, &format!("{}.app", name.trim_end_matches(".app")));
                self.osquery_row(
                    t,
                    h,
                    "apps",
                    &format!("{{\"name\":{app},\"bundle_short_version\":\"{version}\",\"bundle_identifier\":\"com.example.{}\"}}", version.len()),
                    action,
                )
            }
            Platform::Linux => self.osquery_row(
                t,
                h,
                "deb_packages",
                &format!("{{\"name\":{n},\"version\":\"{version}\",\"arch\":\"amd64\",\"maintainer\":{vd}}}"),
                action,
            ),
        }
    }

    /// What osquery reports the first time it runs on a host.
    pub fn inventory_baseline(&mut self, cfg: &Config, h: &Host) -> io::Result<()> {
        let t = at(cfg, 0, 6 * 3600);
        match h.platform {
            Platform::Windows => {
                for (name, version, vendor) in WINDOWS_PROGRAMS {
                    self.product_row(t, h, name, version, vendor, "added")?;
                }
                if h.console {
                    // Same vendor, different product: a name match must be exact.
                    self.product_row(
                        t,
                        h,
                        "3CX Phone System Management Console",
                        "18.12.416",
                        "3CX",
                        "added",
                    )?;
                }
            }
            Platform::Macos => {
                for (name, version) in MAC_APPS {
                    self.product_row(t, h, name, version, "", "added")?;
                }
            }
            Platform::Linux => {
                for (name, version) in DEB_PACKAGES {
                    self.product_row(t, h, name, version, "Debian", "added")?;
                }
            }
        }
        Ok(())
    }

    /// 3CX installs, upgrades and removals that happen on `day`.
    pub fn inventory_changes(&mut self, cfg: &Config, day: u64, h: &Host) -> io::Result<()> {
        let (from, to) = (day_start(cfg, day), day_start(cfg, day + 1));
        let mut changes: Vec<(Time, u8, &str)> = Vec::new();
        for (v, start, end) in &h.app {
            if let Some(end) = end
                && (from..to).contains(end)
            {
                changes.push((*end, 0, v));
            }
            if (from..to).contains(start) {
                changes.push((*start, 1, v));
            }
        }
        changes.sort();
        for (t, kind, v) in changes {
            self.product_row(
                t,
                h,
                APP_NAME,
                v,
                "3CX",
                if kind == 0 { "removed" } else { "added" },
            )?;
        }
        Ok(())
    }
}

fn resolver(h: &Host) -> String {
    let mut parts = h.ip.splitn(3, '.');
    format!("10.{}.0.1", parts.nth(1).unwrap_or("0"))
}

fn dhcp_server(h: &Host) -> String {
    let mut parts = h.ip.splitn(3, '.');
    format!("10.{}.0.2", parts.nth(1).unwrap_or("0"))
}
