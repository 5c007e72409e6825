package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The sandbox is a private mount namespace and a fresh network namespace
// that the battery runs in, with all its nodes. Inside it the battery may
// mount a small tmpfs as a node's data dir and add nftables rules between
// the nodes' loopback addresses without touching the host; the kernel tears
// both down when the last process in them exits, so nothing is left mounted
// or filtered on any exit path, a SIGKILL of the battery included.

// SandboxEnv is set in the environment of a process running in the sandbox
// (not VLTAVA_...: the broker reads those as its configuration).
const SandboxEnv = "VLTAVACHAOS_SANDBOX"

// InSandbox reports whether this process runs inside the battery's sandbox.
func InSandbox() bool { return os.Getenv(SandboxEnv) == "1" }

// RunInSandbox re-executes this program with the same arguments in new mount
// and network namespaces (root is needed) and returns its exit code. Signals
// that would stop the battery (SIGINT, SIGTERM) are passed to it so that it
// heals and stops its nodes.
func RunInSandbox() (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 1, err
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), SandboxEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("enter sandbox (new mount and network namespaces need root): %w", err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// SetUpSandbox prepares the namespaces the process was started in: mounts
// become private (so a tmpfs mounted here never shows on the host) and the
// fresh network namespace's loopback comes up (all of 127.0.0.0/8 is then
// local, one address per node).
func SetUpSandbox() error {
	if !InSandbox() {
		return errors.New("not in the battery's sandbox")
	}
	if err := unix.Mount("none", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	return LoopbackUp()
}

// LoopbackUp brings the lo interface of the current network namespace up.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// Disk is a small tmpfs mounted at Dir inside the sandbox: a node's data
// dir lives in Dir/data, and Fill puts a ballast file beside it.
type Disk struct {
	Dir  string
	Size int64
}

// MountDisk mounts a tmpfs of size bytes at dir (created if needed). Only in
// the sandbox: outside it the mount would outlive a killed battery.
func MountDisk(dir string, size int64) (*Disk, error) {
	if !InSandbox() {
		return nil, errors.New("a tmpfs data dir needs the battery's sandbox")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		return nil, fmt.Errorf("mount tmpfs at %s: %w", dir, err)
	}
	return &Disk{Dir: dir, Size: size}, nil
}

func (d *Disk) ballast() string { return filepath.Join(d.Dir, "ballast") }

// Fill takes all the free space with a ballast file, so the node's next
// write fails with ENOSPC. It returns the bytes taken.
func (d *Disk) Fill() (int64, error) {
	f, err := os.OpenFile(d.ballast(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var taken int64
	// fallocate takes most of it at once; page-sized writes the rest, until
	// the filesystem says it is full.
	var st unix.Statfs_t
	if err := unix.Statfs(d.Dir, &st); err == nil {
		free := int64(st.Bavail) * st.Bsize
		for free > 0 {
			if err := unix.Fallocate(int(f.Fd()), 0, taken, free); err == nil {
				taken += free
				break
			}
			free /= 2
		}
	}
	page := make([]byte, 4096)
	for {
		n, err := f.Write(page)
		taken += int64(n)
		if errors.Is(err, unix.ENOSPC) {
			return taken, nil
		}
		if err != nil {
			return taken, err
		}
	}
}

// Free removes the ballast.
func (d *Disk) Free() error {
	err := os.Remove(d.ballast())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Grow remounts the tmpfs with size bytes.
func (d *Disk) Grow(size int64) error {
	if err := unix.Mount("tmpfs", d.Dir, "tmpfs", unix.MS_REMOUNT, fmt.Sprintf("size=%d", size)); err != nil {
		return fmt.Errorf("remount %s size=%d: %w", d.Dir, size, err)
	}
	d.Size = size
	return nil
}

// Used is the bytes in use on the tmpfs.
func (d *Disk) Used() int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(d.Dir, &st); err != nil {
		return -1
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// Unmount detaches the tmpfs (its contents are gone).
func (d *Disk) Unmount() error { return unix.Unmount(d.Dir, unix.MNT_DETACH) }
