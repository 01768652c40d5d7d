// Package pgtest runs a real, throw-away PostgreSQL server for the tests of
// one test binary, and gives each test its own fresh database.
//
// A package that uses it calls [Main] from its TestMain and [NewDatabase]
// from each test:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		dsn := pgtest.NewDatabase(t)
//		...
//	}
//
// The server is started by the first [NewDatabase] of the binary, so a run
// that selects no database test starts none. It is initialised with initdb
// into a new temporary directory, listens only on a unix socket in that
// directory (no TCP port, so parallel test binaries never collide), trusts
// every local connection, and runs with fsync off: it is fast and loses
// everything on a crash, which is what a test wants. [Main] stops it and
// removes the directory when the tests end; if the test binary dies
// instead, the kernel stops the server (it runs with a parent-death
// signal), and only the directory is left in the temporary directory.
//
// The binaries are those of the newest Debian package in
// /usr/lib/postgresql/*/bin, else postgres and initdb found on PATH. If
// there are none, every test that asks for a database fails with
// "PostgreSQL is not installed: apt-get install -y postgresql"; tests never
// skip.
//
// Run as root, initdb and postgres refuse to start; pgtest then runs them
// as the "postgres" system user, which the Debian package creates, and
// gives that user the temporary directory.
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// NotInstalled is the message of the failure when no PostgreSQL binaries
// are found.
const NotInstalled = "PostgreSQL is not installed: apt-get install -y postgresql"

// startTimeout bounds how long the server may take to accept connections.
const startTimeout = 60 * time.Second

var (
	inMain  bool // set by Main
	once    sync.Once
	srv     *server
	srvErr  error
	mainErr = errors.New("pgtest: call pgtest.Main(m) (or Run) from the package's TestMain: it stops the server when the tests end")
)

// Main runs the tests of m and then stops the server, if a test started
// it, and exits with the tests' status. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it returns the tests' status, for a
// TestMain that runs m through another wrapper (testscript.Main).
func Run(m interface{ Run() int }) int {
	inMain = true
	code := m.Run()
	if srv != nil {
		if err := srv.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// NewDatabase creates a new, empty database on the binary's server and
// returns a DSN (libpq keyword/value form) that connects to it as a
// superuser. The database is dropped when t ends, after t's other
// cleanups (so close connections in a cleanup registered after this
// call). It fails t if the server cannot be started.
func NewDatabase(t testing.TB) string {
	t.Helper()
	if !inMain {
		t.Fatal(mainErr)
	}
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		t.Fatal(srvErr)
	}
	name := "t_" + strings.ToLower(rand.Text())
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := srv.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		if err := srv.exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return srv.dsn(name)
}

// server is a running postmaster.
type server struct {
	dir    string // temporary directory: data/, the socket, the log
	socket string // directory of the unix socket
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	log    *os.File
}

// dsn returns the DSN of database name.
func (s *server) dsn(name string) string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", s.socket, name)
}

// exec runs one statement in database postgres.
func (s *server) exec(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// debianInitdb is where the Debian packages put initdb, one per major
// version.
var debianInitdb = "/usr/lib/postgresql/*/bin/initdb"

// binDir returns the directory of the newest PostgreSQL binaries.
func binDir() (string, error) {
	initdbs, _ := filepath.Glob(debianInitdb)
	slices.SortFunc(initdbs, func(a, b string) int { return version(a) - version(b) })
	if len(initdbs) > 0 {
		return filepath.Dir(initdbs[len(initdbs)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New(NotInstalled)
}

// version returns the major version in /usr/lib/postgresql/<v>/bin/initdb.
func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// start initialises a data directory and starts a server on it.
func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("%s (%s is missing)", NotInstalled, filepath.Join(bin, b))
		}
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	// A short base keeps the socket path under the 107-byte limit.
	dir, err := os.MkdirTemp("/tmp", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &server{dir: dir, socket: dir, exited: make(chan struct{})}
	if err := s.init(bin, cred); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// credential returns whom to run PostgreSQL as: nil for the current user,
// or the postgres system user when running as root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, PostgreSQL must run as the postgres system user, which does not exist: %w; "+
			"apt-get install -y postgresql creates it, or run the tests as a normal user", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: user postgres has uid %q gid %q, want numbers", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// init runs initdb and starts postgres, and waits until it accepts
// connections.
func (s *server) init(bin string, cred *syscall.Credential) error {
	if cred != nil {
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: give %s to user postgres: %w", s.dir, err)
		}
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "--pgdata", data, "--username", "postgres",
		"--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	initdb.Dir = s.dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}

	log, err := os.Create(filepath.Join(s.dir, "postgres.log"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	s.log = log
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-k", s.socket, "-p", "5432",
		"-c", "listen_addresses=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = log, log
	// SIGQUIT is an immediate shutdown: if the test binary dies, so does
	// the server. Pdeathsig is set after the credentials change, so it
	// holds for the postgres user too.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := s.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		s.stop()
		return err
	}
	return nil
}

// waitReady connects until the server answers, it exits, or startTimeout
// passes.
func (s *server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for {
		err := s.exec(ctx, "SELECT 1")
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("pgtest: postgres exited at start: %s\n%s", s.cmd.ProcessState, s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres accepted no connection within %v: %v\n%s", startTimeout, err, s.logTail())
		case <-retry.C:
		}
	}
}

// logTail returns the end of the server's log.
func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log.Name())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop shuts the server down (fast shutdown: connections are closed) and
// removes its directory.
func (s *server) stop() error {
	var err error
	select {
	case <-s.exited:
	default:
		if err = s.cmd.Process.Signal(syscall.SIGINT); err == nil {
			select {
			case <-s.exited:
			case <-time.After(startTimeout):
				s.cmd.Process.Kill()
				<-s.exited
				err = fmt.Errorf("postgres did not stop within %v; killed it", startTimeout)
			}
		}
	}
	s.log.Close()
	return errors.Join(err, os.RemoveAll(s.dir))
}
