//! SMB access for the capture destination and Connect to Network Folder,
//! through libsmbclient, loaded at run time on the first connection (see
//! `smbffi`: no samba library is mapped by a process that never uses a
//! share). A connection is made and the
//! account checked before any capture work; a WIM goes to the share under
//! a temporary name (`.file.wim.tasq-<random>` beside the destination),
//! streamed in bounded chunks from the local file, checked for its size,
//! and only then renamed over the destination, so the destination name
//! never holds a partial WIM. On any failure the temporary file is removed
//! when the server still lets us.

use super::dest::{Account, SmbLocation};
use super::smbffi::{Context, Options};
use std::io::{self, Read};

/// Upload chunk: the memory a transfer holds at once.
const CHUNK: usize = 1 << 20;

/// How long libsmbclient waits for a silent server.
const TIMEOUT_MS: i32 = 30_000;

/// A connection to one share. Not `Sync`/`Send`: libsmbclient contexts are
/// not thread-safe, so a share stays with the thread that connected it.
pub struct SmbShare {
    ctx: Context,
    /// `smb://server[:port]/share`, to which `share_path`s are appended.
    base: String,
    root: SmbLocation,
    account: String,
}

/// Percent-encodes a path component for a libsmbclient URL.
fn encode(c: &str) -> String {
    let mut s = String::new();
    for b in c.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'$' | b' ') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// `/a/b` from components (the form appended to the share URL).
fn share_path(comps: &[String]) -> String {
    if comps.is_empty() {
        return "/".into();
    }
    comps.iter().map(|c| format!("/{}", encode(c))).collect()
}

impl SmbShare {
    /// Connects to the share of `loc` as `account` and checks the account
    /// by looking at the share's root: a wrong password, an unknown share or
    /// an unreachable server is an error here, naming server, share and
    /// account (never the password).
    pub fn connect(
        loc: &SmbLocation,
        account: &Account,
        password: &str,
    ) -> Result<SmbShare, String> {
        let root = loc.share_root();
        let mut base = format!("smb://{}", loc.server);
        if let Some(p) = loc.port {
            base.push_str(&format!(":{p}"));
        }
        base.push('/');
        base.push_str(&encode(&loc.share));
        // No silent fall-back to a guest session when the password is wrong
        // (the context never logs in anonymously).
        let ctx = Context::new(&Options {
            workgroup: account.domain.as_deref().unwrap_or("WORKGROUP"),
            user: &account.user,
            password,
            timeout_ms: TIMEOUT_MS,
        })
        .map_err(|e| format!("{e} (for {root})"))?;
        let share = SmbShare {
            ctx,
            base,
            root,
            account: account.to_string(),
        };
        share
            .ctx
            .stat(&share.url(&[]))
            .map_err(|e| share.explain("connecting to", &share.root, &e))?;
        Ok(share)
    }

    /// The libsmbclient URL of `comps` inside the share.
    fn url(&self, comps: &[String]) -> String {
        format!("{}{}", self.base, share_path(comps))
    }

    fn explain(&self, doing: &str, what: &SmbLocation, e: &io::Error) -> String {
        let why = match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => format!(
                "access denied for account {} (wrong user name or password, or no rights on the share)",
                self.account
            ),
            Some(libc::ENOENT) | Some(libc::ENODEV) => "no such share or path".to_string(),
            Some(libc::ECONNREFUSED) | Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH) => {
                format!("server {} not reachable", self.root.server)
            }
            Some(libc::ETIMEDOUT) => format!("server {} did not answer in time", self.root.server),
            Some(libc::ENOSPC) => "the share is full".to_string(),
            _ => e.to_string(),
        };
        format!("{doing} {what} as {}: {why}", self.account)
    }

    pub fn root(&self) -> &SmbLocation {
        &self.root
    }

    /// Checks that `dir` (components inside the share) is a folder.
    pub fn check_dir(&self, dir: &[String]) -> Result<(), String> {
        let loc = self.root.join(dir);
        let st = self
            .ctx
            .stat(&self.url(dir))
            .map_err(|e| self.explain("looking at", &loc, &e))?;
        if st.is_dir {
            Ok(())
        } else {
            Err(format!("{loc} is not a folder"))
        }
    }

    /// Creates an empty file `path` that must not exist yet (proves that the
    /// account may write there).
    pub fn create_new(&self, path: &[String]) -> Result<(), String> {
        let loc = self.root.join(path);
        self.ctx
            .open(
                &self.url(path),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            )
            .and_then(|f| f.close())
            .map_err(|e| self.explain("creating", &loc, &e))
    }

    /// Removes a file; errors are returned for the caller to report.
    pub fn remove(&self, path: &[String]) -> Result<(), String> {
        let loc = self.root.join(path);
        self.ctx
            .unlink(&self.url(path))
            .map_err(|e| self.explain("removing", &loc, &e))
    }

    /// Size of a file, `None` when it does not exist.
    pub fn size(&self, path: &[String]) -> Result<Option<u64>, String> {
        match self.ctx.stat(&self.url(path)) {
            Ok(st) => Ok(Some(st.size)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.explain("looking at", &self.root.join(path), &e)),
        }
    }

    /// Writes all of `src` (`len` bytes) into the existing file `temp`,
    /// checks its size on the server, then renames it over `dest`. On a
    /// failure the temporary file is removed if the server allows; `dest`
    /// is left as it was (or, if the failure hits between removing an old
    /// `dest` and the rename, absent — never partial).
    pub fn upload(
        &self,
        src: &mut dyn Read,
        len: u64,
        temp: &[String],
        dest: &[String],
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), String> {
        let r = self.upload_inner(src, len, temp, dest, progress);
        if r.is_err() {
            let _ = self.remove(temp);
        }
        r
    }

    fn upload_inner(
        &self,
        src: &mut dyn Read,
        len: u64,
        temp: &[String],
        dest: &[String],
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), String> {
        let tloc = self.root.join(temp);
        let mut f = self
            .ctx
            .open(
                &self.url(temp),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            )
            .map_err(|e| self.explain("opening", &tloc, &e))?;
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        loop {
            let n = src
                .read(&mut buf)
                .map_err(|e| format!("reading the local WIM: {e}"))?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or(&[]);
            f.write_all(chunk)
                .map_err(|e| self.explain("writing", &tloc, &e))?;
            done += n as u64;
            progress(done);
        }
        f.close().map_err(|e| self.explain("closing", &tloc, &e))?;
        if done != len {
            return Err(format!(
                "the local WIM changed while it was sent ({done} bytes read, {len} expected)"
            ));
        }
        let on_server = self.size(temp)?;
        if on_server != Some(len) {
            return Err(format!(
                "{tloc} holds {} bytes after the transfer, {len} were sent",
                on_server.map_or("no".to_string(), |n| n.to_string())
            ));
        }
        self.replace(temp, dest)
    }

    /// Renames `from` over `to`. SMB's rename through libsmbclient refuses
    /// an existing target, so an existing `to` is removed first and the
    /// rename tried again.
    fn replace(&self, from: &[String], to: &[String]) -> Result<(), String> {
        let dloc = self.root.join(to);
        let (from, to_url) = (self.url(from), self.url(to));
        match self.ctx.rename(&from, &to_url) {
            Ok(()) => Ok(()),
            Err(first) => {
                if self.size(to)?.is_none() {
                    return Err(self.explain("renaming the upload to", &dloc, &first));
                }
                self.remove(to)?;
                self.ctx
                    .rename(&from, &to_url)
                    .map_err(|e| self.explain("renaming the upload to", &dloc, &e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_are_encoded() {
        assert_eq!(share_path(&[]), "/");
        assert_eq!(
            share_path(&["a b".into(), "x%y#.wim".into()]),
            "/a b/x%25y%23.wim"
        );
    }
}
