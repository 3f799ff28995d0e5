// Command exec-guard runs a program — a test binary, via `go test -exec` — that may write
// only beneath the directories listed in $GUILD_GUARD_WRITABLE (and to /dev/null).
//
// The go command that starts it must write to the shared build cache; the model-written
// code it runs must not. Landlock (Linux 5.13+) lets an unprivileged process give up
// write access for itself and every process it starts, for good. If that cannot be done,
// the program is not run at all: exit status 125 and a line on stderr.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

const (
	sysCreateRuleset = 444
	sysAddRule       = 445
	sysRestrictSelf  = 446
	rulePathBeneath  = 1
	createVersion    = 1 // landlock_create_ruleset flag: return the ABI version
	prSetNoNewPrivs  = 38
	oPath            = 0x200000 // O_PATH, which package syscall does not name
)

// Access rights of the Landlock filesystem ABI, in kernel bit order.
const (
	fsExecute uint64 = 1 << iota
	fsWriteFile
	fsReadFile
	fsReadDir
	fsRemoveDir
	fsRemoveFile
	fsMakeChar
	fsMakeDir
	fsMakeReg
	fsMakeSock
	fsMakeFifo
	fsMakeBlock
	fsMakeSym
	fsRefer    // ABI 2
	fsTruncate // ABI 3
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "exec-guard: "+format+"\n", args...)
	os.Exit(125)
}

func syscall3(trap, a1, a2, a3 uintptr) (uintptr, syscall.Errno) {
	r, _, errno := syscall.Syscall(trap, a1, a2, a3)
	return r, errno
}

// allow lets the ruleset permit `access` beneath path (a directory, or one file).
func allow(ruleset uintptr, path string, access uint64) {
	fd, err := syscall.Open(path, oPath|syscall.O_CLOEXEC, 0)
	if err != nil {
		return // nothing there: nothing to allow
	}
	defer syscall.Close(fd)
	// struct landlock_path_beneath_attr is packed: u64 allowed_access, s32 parent_fd.
	var attr [12]byte
	binary.NativeEndian.PutUint64(attr[0:8], access)
	binary.NativeEndian.PutUint32(attr[8:12], uint32(fd))
	if _, _, errno := syscall.Syscall6(sysAddRule, ruleset, rulePathBeneath,
		uintptr(unsafe.Pointer(&attr[0])), 0, 0, 0); errno != 0 {
		fail("cannot allow writes beneath %s: %v", path, errno)
	}
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: exec-guard PROGRAM [ARG...]")
	}
	abi, errno := syscall3(sysCreateRuleset, 0, 0, createVersion)
	if errno != 0 || abi < 1 {
		fail("Landlock is not available (%v): refusing to run unconfined", errno)
	}
	write := fsWriteFile | fsRemoveDir | fsRemoveFile | fsMakeChar | fsMakeDir | fsMakeReg |
		fsMakeSock | fsMakeFifo | fsMakeBlock | fsMakeSym
	fileWrite := fsWriteFile
	if abi >= 2 {
		write |= fsRefer
	}
	if abi >= 3 {
		write |= fsTruncate
		fileWrite |= fsTruncate
	}
	handled := write
	ruleset, errno := syscall3(sysCreateRuleset, uintptr(unsafe.Pointer(&handled)),
		unsafe.Sizeof(handled), 0)
	if errno != 0 {
		fail("cannot create a Landlock ruleset: %v", errno)
	}
	for _, dir := range filepath.SplitList(os.Getenv("GUILD_GUARD_WRITABLE")) {
		if dir != "" {
			allow(ruleset, dir, write)
		}
	}
	allow(ruleset, "/dev/null", fileWrite)
	if _, errno := syscall3(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0); errno != 0 {
		fail("cannot set no_new_privs: %v", errno)
	}
	if _, errno := syscall3(sysRestrictSelf, ruleset, 0, 0); errno != 0 {
		fail("cannot restrict itself: %v", errno)
	}
	syscall.Close(int(ruleset))
	if err := syscall.Exec(os.Args[1], os.Args[1:], os.Environ()); err != nil {
		fail("cannot run %s: %v", os.Args[1], err)
	}
}
