//! A minimal binding to libsmbclient's context API, loaded at run time.
//!
//! The library (`libsmbclient.so.0`, Debian package libsmbclient) is opened
//! with dlopen the first time a share is used and then kept for the life of
//! the process, so a tasq process that never touches a share maps none of
//! the ~66 samba libraries it pulls in. Only the calls the capture
//! destination needs are bound: a context with credentials, stat, open
//! (create/exclusive/truncate), write, close, unlink and rename.
//!
//! libsmbclient keeps process-wide state besides its contexts, so every
//! native call of every [`Context`] is made under one process-wide lock;
//! a [`Context`] is also `!Send` and `!Sync` (it stays on the thread that
//! made it). All `unsafe` code for libsmbclient is in this module.

use libloading::Library;
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CString};
use std::io;
use std::marker::PhantomData;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The shared object opened with dlopen.
pub const LIBRARY: &str = "libsmbclient.so.0";

/// `SMBCCTX`, opaque.
#[repr(C)]
struct RawCtx {
    _opaque: [u8; 0],
}

/// `SMBCFILE`, opaque.
#[repr(C)]
struct RawFile {
    _opaque: [u8; 0],
}

/// `smbc_get_auth_data_with_context_fn`.
type AuthFn = unsafe extern "C" fn(
    *mut RawCtx,
    *const c_char,
    *const c_char,
    *mut c_char,
    c_int,
    *mut c_char,
    c_int,
    *mut c_char,
    c_int,
);
type OpenFn = unsafe extern "C" fn(*mut RawCtx, *const c_char, c_int, libc::mode_t) -> *mut RawFile;
type WriteFn = unsafe extern "C" fn(*mut RawCtx, *mut RawFile, *const c_void, usize) -> isize;
type CloseFn = unsafe extern "C" fn(*mut RawCtx, *mut RawFile) -> c_int;
type UnlinkFn = unsafe extern "C" fn(*mut RawCtx, *const c_char) -> c_int;
type RenameFn =
    unsafe extern "C" fn(*mut RawCtx, *const c_char, *mut RawCtx, *const c_char) -> c_int;
type StatFn = unsafe extern "C" fn(*mut RawCtx, *const c_char, *mut libc::stat) -> c_int;
/// A setter of a `smbc_bool` or enum option (a C `int`).
type SetIntFn = unsafe extern "C" fn(*mut RawCtx, c_int);

/// `SMBC_ENCRYPTLEVEL_NONE`.
const ENCRYPTLEVEL_NONE: c_int = 0;

/// The entry points used, resolved once from the loaded library.
struct Api {
    new_context: unsafe extern "C" fn() -> *mut RawCtx,
    init_context: unsafe extern "C" fn(*mut RawCtx) -> *mut RawCtx,
    free_context: unsafe extern "C" fn(*mut RawCtx, c_int) -> c_int,
    set_auth: unsafe extern "C" fn(*mut RawCtx, Option<AuthFn>),
    set_user_data: unsafe extern "C" fn(*mut RawCtx, *mut c_void),
    get_user_data: unsafe extern "C" fn(*mut RawCtx) -> *mut c_void,
    set_timeout: unsafe extern "C" fn(*mut RawCtx, c_int),
    set_no_auto_anonymous_login: SetIntFn,
    set_case_sensitive: SetIntFn,
    set_use_kerberos: SetIntFn,
    set_fallback_after_kerberos: SetIntFn,
    set_use_ccache: SetIntFn,
    set_encryption_level: SetIntFn,
    get_open: unsafe extern "C" fn(*mut RawCtx) -> Option<OpenFn>,
    get_write: unsafe extern "C" fn(*mut RawCtx) -> Option<WriteFn>,
    get_close: unsafe extern "C" fn(*mut RawCtx) -> Option<CloseFn>,
    get_unlink: unsafe extern "C" fn(*mut RawCtx) -> Option<UnlinkFn>,
    get_rename: unsafe extern "C" fn(*mut RawCtx) -> Option<RenameFn>,
    get_stat: unsafe extern "C" fn(*mut RawCtx) -> Option<StatFn>,
    /// Keeps the library mapped while the pointers above are used (the
    /// `Api` lives in a static, so for the life of the process).
    _lib: Library,
}

/// Why the library could not be used.
fn missing(detail: impl std::fmt::Display) -> String {
    format!("SMB destination needs libsmbclient (apt-get install libsmbclient): {detail}")
}

impl Api {
    fn load(name: &str) -> Result<Api, String> {
        // SAFETY: opening libsmbclient runs its (and samba's) ELF
        // initialisers, which only set up library-internal state; no Rust
        // invariant depends on them.
        let lib = unsafe { Library::new(name) }.map_err(missing)?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the type each field is declared with is the C
                // prototype of that function in libsmbclient.h (samba 4.x);
                // the pointer is only called while `lib` is alive (it is
                // stored beside it and never dropped, see `api`).
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| missing(format!("{name} lacks {}: {e}", $name)))?
            };
        }
        Ok(Api {
            new_context: sym!("smbc_new_context"),
            init_context: sym!("smbc_init_context"),
            free_context: sym!("smbc_free_context"),
            set_auth: sym!("smbc_setFunctionAuthDataWithContext"),
            set_user_data: sym!("smbc_setOptionUserData"),
            get_user_data: sym!("smbc_getOptionUserData"),
            set_timeout: sym!("smbc_setTimeout"),
            set_no_auto_anonymous_login: sym!("smbc_setOptionNoAutoAnonymousLogin"),
            set_case_sensitive: sym!("smbc_setOptionCaseSensitive"),
            set_use_kerberos: sym!("smbc_setOptionUseKerberos"),
            set_fallback_after_kerberos: sym!("smbc_setOptionFallbackAfterKerberos"),
            set_use_ccache: sym!("smbc_setOptionUseCCache"),
            set_encryption_level: sym!("smbc_setOptionSmbEncryptionLevel"),
            get_open: sym!("smbc_getFunctionOpen"),
            get_write: sym!("smbc_getFunctionWrite"),
            get_close: sym!("smbc_getFunctionClose"),
            get_unlink: sym!("smbc_getFunctionUnlink"),
            get_rename: sym!("smbc_getFunctionRename"),
            get_stat: sym!("smbc_getFunctionStat"),
            _lib: lib,
        })
    }
}

/// The library, loaded on first use. A failure is kept too: it is reported
/// again to every later caller rather than retried.
fn api() -> Result<&'static Api, String> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| Api::load(LIBRARY))
        .as_ref()
        .map_err(Clone::clone)
}

/// Serialises native calls across all contexts of the process.
fn native_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Credentials handed to libsmbclient by [`auth_callback`]; NUL-terminated
/// byte strings, the password overwritten when dropped.
struct Credentials {
    workgroup: CString,
    user: CString,
    password: Vec<u8>,
}

impl Drop for Credentials {
    fn drop(&mut self) {
        self.password.fill(0);
        std::hint::black_box(&self.password);
    }
}

/// Copies `s` into the C buffer `dst` of `len` bytes, cut to fit, NUL-ended.
///
/// # Safety
/// `dst` must be null or valid for writes of `len` bytes.
unsafe fn put(dst: *mut c_char, len: c_int, s: &[u8]) {
    let Ok(len) = usize::try_from(len) else {
        return;
    };
    if dst.is_null() || len == 0 {
        return;
    }
    let n = s.len().min(len - 1);
    // SAFETY: `n < len` bytes from `s` (valid for `s.len() >= n`) and then
    // one NUL at offset `n < len`, all inside `dst`'s `len` bytes (caller's
    // contract); `s` is Rust memory and cannot overlap libsmbclient's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), dst.cast::<u8>(), n);
        *dst.add(n) = 0;
    }
}

/// Answers libsmbclient's request for credentials with the context's own.
/// Logs nothing and never unwinds.
unsafe extern "C" fn auth_callback(
    ctx: *mut RawCtx,
    _server: *const c_char,
    _share: *const c_char,
    wg: *mut c_char,
    wglen: c_int,
    un: *mut c_char,
    unlen: c_int,
    pw: *mut c_char,
    pwlen: c_int,
) {
    // The callback is only installed on contexts made after `api()`
    // succeeded, so this is always `Ok`.
    let Ok(api) = api() else { return };
    // SAFETY: `ctx` is the live context libsmbclient calls us for; its user
    // data was set by `Context::new` to a `Credentials` that the `Context`
    // owns and frees only after `smbc_free_context`.
    let creds = unsafe { (api.get_user_data)(ctx) }.cast::<Credentials>();
    // SAFETY: see above: null or a live `Credentials`, only read here.
    let Some(creds) = (unsafe { creds.as_ref() }) else {
        return;
    };
    let password = creds.password.split_last().map_or(&[][..], |(_, p)| p);
    // SAFETY: libsmbclient passes each buffer with its length.
    unsafe {
        put(wg, wglen, creds.workgroup.as_bytes());
        put(un, unlen, creds.user.as_bytes());
        put(pw, pwlen, password);
    }
}

fn c_string(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL character in a name or credential",
        )
    })
}

/// A function pointer the context did not provide.
fn unsupported(what: &str) -> io::Error {
    io::Error::other(format!("libsmbclient provides no {what}"))
}

/// What stat tells of a path on the share.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub is_dir: bool,
    pub size: u64,
}

/// Options of a new libsmbclient context.
pub struct Options<'a> {
    pub workgroup: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    /// Milliseconds.
    pub timeout_ms: i32,
}

/// One libsmbclient context (its connections and credentials), freed on
/// drop. `!Sync` and `!Send`: it stays with the thread that made it.
pub struct Context {
    api: &'static Api,
    raw: *mut RawCtx,
    /// Owned here; libsmbclient holds a pointer to it as user data.
    creds: *mut Credentials,
    _not_sync: PhantomData<Cell<()>>,
}

impl Context {
    /// Loads the library if needed and makes a context that logs in with
    /// `opts` (never as a guest), is case-insensitive, uses neither Kerberos
    /// nor a credential cache, and gives up on a silent server after
    /// `opts.timeout_ms`.
    pub fn new(opts: &Options) -> Result<Context, String> {
        let api = api()?;
        let bad = |e: io::Error| format!("cannot set up an SMB client: {e}");
        let mut password = c_string(opts.password).map_err(bad)?.into_bytes_with_nul();
        let creds = Credentials {
            workgroup: c_string(opts.workgroup).map_err(bad)?,
            user: c_string(opts.user).map_err(bad)?,
            password: std::mem::take(&mut password),
        };
        let creds = Box::into_raw(Box::new(creds));
        let _guard = native_lock();
        // SAFETY: a plain constructor; null on failure, checked below.
        let raw = unsafe { (api.new_context)() };
        if raw.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: `creds` came from `Box::into_raw` above, not shared.
            drop(unsafe { Box::from_raw(creds) });
            return Err(bad(e));
        }
        // From here `ctx` frees both the context and the credentials.
        let mut ctx = Context {
            api,
            raw,
            creds,
            _not_sync: PhantomData,
        };
        // SAFETY: `raw` is a fresh, not yet initialised context, which is
        // what these setters take; `creds` outlives the context (freed after
        // it in `drop`) and `auth_callback` has the declared prototype.
        let init = unsafe {
            (api.set_user_data)(raw, creds.cast());
            (api.set_auth)(raw, Some(auth_callback));
            (api.set_no_auto_anonymous_login)(raw, 1);
            (api.set_case_sensitive)(raw, 0);
            (api.set_use_kerberos)(raw, 0);
            (api.set_fallback_after_kerberos)(raw, 0);
            (api.set_use_ccache)(raw, 0);
            (api.set_encryption_level)(raw, ENCRYPTLEVEL_NONE);
            (api.set_timeout)(raw, opts.timeout_ms);
            (api.init_context)(raw)
        };
        if init.is_null() {
            let e = io::Error::last_os_error();
            return Err(bad(e));
        }
        ctx.raw = init;
        Ok(ctx)
    }

    /// Runs `call` on the context under the process-wide lock and turns a
    /// `-1` result into the `errno` it set.
    fn checked<T: PartialEq + From<i8>>(
        &self,
        call: impl FnOnce(*mut RawCtx) -> T,
    ) -> io::Result<T> {
        let _guard = native_lock();
        let r = call(self.raw);
        if r == T::from(-1) {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    pub fn stat(&self, url: &str) -> io::Result<Stat> {
        let url = c_string(url)?;
        // SAFETY: a getter on our live context.
        let f = unsafe { (self.api.get_stat)(self.raw) }.ok_or_else(|| unsupported("stat"))?;
        // SAFETY: `libc::stat` is plain old data, all-zero is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: live context, NUL-terminated URL, `st` a writable stat.
        self.checked(|raw| unsafe { f(raw, url.as_ptr(), &mut st) })?;
        Ok(Stat {
            is_dir: st.st_mode & libc::S_IFMT == libc::S_IFDIR,
            size: u64::try_from(st.st_size).unwrap_or(0),
        })
    }

    /// Opens `url` with open(2) `flags` (mode 0644 for a new file).
    pub fn open(&self, url: &str, flags: c_int) -> io::Result<File<'_>> {
        let url = c_string(url)?;
        // SAFETY: a getter on our live context.
        let f = unsafe { (self.api.get_open)(self.raw) }.ok_or_else(|| unsupported("open"))?;
        let _guard = native_lock();
        // SAFETY: live context, NUL-terminated URL.
        let raw = unsafe { f(self.raw, url.as_ptr(), flags, 0o644) };
        if raw.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(File { ctx: self, raw })
    }

    pub fn unlink(&self, url: &str) -> io::Result<()> {
        let url = c_string(url)?;
        // SAFETY: a getter on our live context.
        let f = unsafe { (self.api.get_unlink)(self.raw) }.ok_or_else(|| unsupported("unlink"))?;
        // SAFETY: live context, NUL-terminated URL.
        self.checked(|raw| unsafe { f(raw, url.as_ptr()) })
            .map(drop)
    }

    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (c_string(from)?, c_string(to)?);
        // SAFETY: a getter on our live context.
        let f = unsafe { (self.api.get_rename)(self.raw) }.ok_or_else(|| unsupported("rename"))?;
        // SAFETY: live context (both sides), NUL-terminated URLs.
        self.checked(|raw| unsafe { f(raw, from.as_ptr(), raw, to.as_ptr()) })
            .map(drop)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        {
            let _guard = native_lock();
            // SAFETY: our context, not used after this; 1 closes its
            // connections and files even if busy (no `File` outlives `self`).
            unsafe { (self.api.free_context)(self.raw, 1) };
        }
        // SAFETY: `creds` came from `Box::into_raw` in `new`; the context
        // that pointed at it is gone.
        drop(unsafe { Box::from_raw(self.creds) });
    }
}

/// A file open on the share; closed on drop (or by [`File::close`], which
/// reports a failure).
pub struct File<'a> {
    ctx: &'a Context,
    raw: *mut RawFile,
}

impl File<'_> {
    /// Writes all of `buf`.
    pub fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        let ctx = self.ctx;
        // SAFETY: a getter on a live context.
        let f = unsafe { (ctx.api.get_write)(ctx.raw) }.ok_or_else(|| unsupported("write"))?;
        while !buf.is_empty() {
            // SAFETY: live context and file; `buf` readable for its length.
            let n =
                ctx.checked(|raw| unsafe { f(raw, self.raw, buf.as_ptr().cast(), buf.len()) })?;
            let n = usize::try_from(n).unwrap_or(0);
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = buf.get(n..).unwrap_or(&[]);
        }
        Ok(())
    }

    /// Closes the file, reporting what the server says.
    pub fn close(mut self) -> io::Result<()> {
        let r = self.close_raw();
        std::mem::forget(self);
        r
    }

    fn close_raw(&mut self) -> io::Result<()> {
        let ctx = self.ctx;
        // SAFETY: a getter on a live context.
        let f = unsafe { (ctx.api.get_close)(ctx.raw) }.ok_or_else(|| unsupported("close"))?;
        // SAFETY: live context and file, not used after this.
        ctx.checked(|raw| unsafe { f(raw, self.raw) }).map(drop)
    }
}

impl Drop for File<'_> {
    fn drop(&mut self) {
        let _ = self.close_raw();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_a_clear_error() {
        let e = Api::load("libsmbclient-tasq-absent.so.0")
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("SMB destination needs libsmbclient (apt-get install libsmbclient)"),
            "{e}"
        );
    }

    #[test]
    fn credentials_are_cut_to_the_buffer_and_nul_ended() {
        let mut buf = [0x55 as c_char; 4];
        // SAFETY: `buf` is 4 writable bytes.
        unsafe { put(buf.as_mut_ptr(), 4, b"abcdef") };
        assert_eq!(buf.map(|c| c as u8), *b"abc\0");
        // SAFETY: as above.
        unsafe { put(buf.as_mut_ptr(), 4, b"x") };
        assert_eq!(buf.map(|c| c as u8)[..2], *b"x\0");
        // SAFETY: a zero length writes nothing.
        unsafe { put(buf.as_mut_ptr(), 0, b"y") };
        assert_eq!(buf.map(|c| c as u8)[0], b'x');
    }
}
