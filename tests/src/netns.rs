//! Network namespaces for partition tests: each host of a [`Lab`] is a namespace with one address, all
//! joined by a bridge in the test's own namespace (which has an address on the bridge too, so the test
//! reaches every host's RPC throughout). A partition is `unreachable` routes inside each host towards
//! the hosts of the other groups: a send across it fails at once, nothing crosses it, and the test's own
//! traffic is untouched. Healing deletes the routes.
//!
//! Making namespaces needs root (or `CAP_NET_ADMIN`) and the `ip` tool; [`Lab::new`] says plainly why it
//! cannot, so a test can skip where it is not permitted. Everything made is deleted when the lab is
//! dropped (deleting a namespace deletes its end of the veth pair, which deletes the other end).

use std::process::Command;

/// Hosts in their own network namespaces on one bridge.
#[derive(Debug)]
pub struct Lab {
    bridge: String,
    subnet: u8,
    namespaces: Vec<String>,
    /// The `unreachable` routes in place: (host, address it cannot reach).
    cuts: Vec<(usize, String)>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run `ip`: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Lab {
    /// `count` hosts (at most 200) on a fresh bridge, or why they cannot be made here.
    pub fn new(count: usize) -> Result<Self, String> {
        assert!(count <= 200, "at most 200 hosts");
        let id = std::process::id();
        // Names are the process's own, so concurrent test processes never collide (interface names
        // are at most 15 bytes).
        let mut lab = Self {
            bridge: format!("acbr{}", id % 100_000_000),
            subnet: u8::try_from(id % 200).unwrap_or(0) + 20,
            namespaces: Vec::new(),
            cuts: Vec::new(),
        };
        ip(&["link", "add", &lab.bridge, "type", "bridge"])?;
        let gateway = format!("{}/24", lab.address_of(253));
        ip(&["addr", "add", &gateway, "dev", &lab.bridge])?;
        ip(&["link", "set", &lab.bridge, "up"])?;
        for host in 0..count {
            let netns = format!("acre-{id}-{host}");
            ip(&["netns", "add", &netns])?;
            lab.namespaces.push(netns.clone());
            let outside = format!("acv{}h{host}", id % 10_000_000);
            let inside = format!("acv{}n{host}", id % 10_000_000);
            ip(&["link", "add", &outside, "type", "veth", "peer", "name", &inside])?;
            ip(&["link", "set", &inside, "netns", &netns])?;
            ip(&["link", "set", &outside, "master", &lab.bridge])?;
            ip(&["link", "set", &outside, "up"])?;
            let address = format!("{}/24", lab.host_address(host));
            ip(&["-n", &netns, "addr", "add", &address, "dev", &inside])?;
            ip(&["-n", &netns, "link", "set", &inside, "up"])?;
            ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        }
        Ok(lab)
    }

    fn address_of(&self, last: u8) -> String {
        format!("10.213.{}.{last}", self.subnet)
    }

    /// Host `host`'s namespace (for `ip netns exec`).
    pub fn netns(&self, host: usize) -> &str {
        &self.namespaces[host]
    }

    /// Host `host`'s address.
    pub fn host_address(&self, host: usize) -> String {
        self.address_of(u8::try_from(host + 1).expect("at most 200 hosts"))
    }

    /// Cuts every host of each group off from the hosts of the other groups (the test still reaches
    /// all of them).
    pub fn partition(&mut self, groups: &[&[usize]]) -> Result<(), String> {
        for (index, group) in groups.iter().enumerate() {
            for (_, other) in groups.iter().enumerate().filter(|(i, _)| *i != index) {
                for &host in *group {
                    for &far in *other {
                        let route = format!("{}/32", self.host_address(far));
                        ip(&["-n", self.netns(host), "route", "add", "unreachable", &route])?;
                        self.cuts.push((host, route));
                    }
                }
            }
        }
        Ok(())
    }

    /// Undoes every partition.
    pub fn heal(&mut self) -> Result<(), String> {
        for (host, route) in std::mem::take(&mut self.cuts) {
            ip(&["-n", self.netns(host), "route", "del", "unreachable", &route])?;
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for netns in &self.namespaces {
            let _ = ip(&["netns", "del", netns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
