package local

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// header is the format version line of a key file.
const header = "byok-local-key v1"

// maxFileSize bounds what Open reads; a key file of 1 MiB holds some
// 20,000 versions.
const maxFileSize = 1 << 20

// Open returns the key kept in the file at path, creating the file with a
// new key named [DefaultName] and mode 0600 if it does not exist. The
// directory must exist. Open refuses a file that is not a regular file or
// that its group or others may read or write.
func Open(path string) (*Key, error) {
	k, err := openFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// If another process creates the file first, use that one.
		if err = createFile(path); err == nil || errors.Is(err, fs.ErrExist) {
			k, err = openFile(path)
		}
	}
	return k, err
}

func openFile(path string) (*Key, error) {
	c, fi, err := readFile(path)
	if err != nil {
		return nil, err
	}
	k := &Key{name: c.name, path: path}
	k.set(c.versions, fi)
	return k, nil
}

// readFile reads and checks a key file.
func readFile(path string) (content, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return content{}, nil, fmt.Errorf("local: open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return content{}, nil, fmt.Errorf("local: open key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return content{}, nil, fmt.Errorf("local: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return content{}, nil, fmt.Errorf("local: key file %s has mode %04o, so other users may read or change it; run: chmod 600 %s",
			path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return content{}, nil, fmt.Errorf("local: read key file: %w", err)
	}
	if len(data) > maxFileSize {
		return content{}, nil, fmt.Errorf("local: key file %s is larger than %d bytes; it is not a byok key file", path, maxFileSize)
	}
	c, err := parseContent(string(data))
	if err != nil {
		return content{}, nil, fmt.Errorf("local: key file %s: %w", path, err)
	}
	return c, fi, nil
}

// createFile writes a new key file at path, failing with an error that
// wraps [fs.ErrExist] if there is one.
func createFile(path string) error {
	data := marshal(DefaultName, map[uint32]*version{1: generate()})
	tmp, _, err := writeTemp(path, data)
	if err != nil {
		return fmt.Errorf("local: create key file: %w", err)
	}
	defer os.Remove(tmp)
	// A hard link, unlike a rename, never replaces an existing file.
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("local: create key file: %w", err)
	}
	if err := syncDir(path); err != nil {
		return fmt.Errorf("local: create key file: %w", err)
	}
	return nil
}

// Rotate adds a new version of k and makes it current: later Wraps with
// the versionless id use it, and every older version keeps unwrapping. It
// returns the new version's id.
//
// Rotate first reads the key file again, so that versions another process
// added are kept, then replaces the file atomically. Do not rotate one file from two processes at
// once. If the key file's path is a symbolic link, Rotate replaces the
// link with a file. A Key from [Parse] has no file and cannot rotate.
//
// If Rotate fails, it added no version, unless the error says that the
// version was added but a crash may lose it (its directory could not be
// synced); it returns the version's id then too.
func (k *Key) Rotate() (string, error) {
	if k.path == "" {
		return "", fmt.Errorf("local: %s was not opened from a file, so it cannot rotate; add a \"key N\" entry to its content instead", k.KeyID())
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	prev := k.current
	if err := k.reloadLocked(); err != nil {
		return "", fmt.Errorf("local: rotate: %w", err)
	}
	last := max(prev, k.current)
	if last == math.MaxUint32 {
		return "", fmt.Errorf("local: rotate: %s has reached the last version number", k.KeyID())
	}
	versions := maps.Clone(k.versions)
	versions[last+1] = generate()
	tmp, fi, err := writeTemp(k.path, marshal(k.name, versions))
	if err != nil {
		return "", fmt.Errorf("local: rotate: %w", err)
	}
	if err := os.Rename(tmp, k.path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("local: rotate: %w", err)
	}
	k.set(versions, fi)
	id := k.versionID(last + 1)
	if err := syncDir(k.path); err != nil {
		return id, fmt.Errorf("local: rotate: %s was added, but a crash may lose it: %w", id, err)
	}
	return id, nil
}

// refresh reads k's file again if it changed since k last read it.
func (k *Key) refresh() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	fi, err := os.Stat(k.path)
	if err != nil {
		return fmt.Errorf("local: check key file: %w", err)
	}
	if k.file != nil && os.SameFile(fi, k.file) && fi.ModTime().Equal(k.file.ModTime()) && fi.Size() == k.file.Size() {
		return nil
	}
	return k.reloadLocked()
}

// reloadLocked replaces k's versions with those in its file. It refuses a
// file that holds another key or another key for a version k holds. The
// caller holds k.mu.
func (k *Key) reloadLocked() error {
	c, fi, err := readFile(k.path)
	if err != nil {
		return err
	}
	if c.name != k.name {
		return fmt.Errorf("local: key file %s now holds local:%s, not %s; restore the original file", k.path, c.name, k.KeyID())
	}
	if !sameVersions(k.versions, c.versions) {
		return fmt.Errorf("local: key file %s now holds a different key for a version of %s; restore the original file", k.path, k.KeyID())
	}
	k.set(c.versions, fi)
	return nil
}

// writeTemp writes data to a new file of mode 0600 beside path and syncs
// it. It returns the file's name and info.
func writeTemp(path string, data []byte) (string, os.FileInfo, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", nil, err
	}
	fi, err := writeSync(f, data)
	if err != nil {
		os.Remove(f.Name())
		return "", nil, err
	}
	return f.Name(), fi, nil
}

func writeSync(f *os.File, data []byte) (os.FileInfo, error) {
	err := f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	var fi os.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return fi, err
}

// syncDir makes a new entry in path's directory durable.
func syncDir(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// content is a parsed key file.
type content struct {
	name     string
	versions map[uint32]*version
}

// parseContent parses the key file format (see the package documentation).
// Its errors name a line, never its content.
func parseContent(s string) (content, error) {
	c := content{versions: map[uint32]*version{}}
	seenHeader := false
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entries := strings.Split(line, ";")
		for j, entry := range entries {
			at := "line " + strconv.Itoa(i+1)
			if len(entries) > 1 {
				at += " entry " + strconv.Itoa(j+1)
			}
			f := strings.Fields(entry)
			switch {
			case len(f) == 0:
				continue
			case !seenHeader:
				if len(f) != 2 || f[0]+" "+f[1] != header {
					if f[0] == "byok-local-key" {
						return content{}, fmt.Errorf("%s: unsupported format version; this build reads %q", at, header)
					}
					return content{}, fmt.Errorf("%s: want the format line %q first", at, header)
				}
				seenHeader = true
			case f[0] == "name" && len(f) == 2:
				if c.name != "" {
					return content{}, fmt.Errorf("%s: a second name entry; a key file holds one key", at)
				}
				if err := validName(f[1]); err != nil {
					return content{}, fmt.Errorf("%s: bad name: %w", at, err)
				}
				c.name = f[1]
			case f[0] == "key" && len(f) == 3:
				n, ok := parseVersion(f[1])
				if !ok {
					return content{}, fmt.Errorf("%s: bad version number; want 1, 2, ... without leading zeros", at)
				}
				if c.versions[n] != nil {
					return content{}, fmt.Errorf("%s: version %d appears twice", at, n)
				}
				raw, err := base64.StdEncoding.Strict().DecodeString(f[2])
				if err != nil {
					return content{}, fmt.Errorf("%s: key of version %d is not standard base64", at, n)
				}
				if len(raw) != keySize {
					return content{}, fmt.Errorf("%s: key of version %d is %d bytes; want %d random bytes, e.g. from: head -c 32 /dev/urandom | base64",
						at, n, len(raw), keySize)
				}
				c.versions[n] = newVersion([keySize]byte(raw))
			default:
				return content{}, fmt.Errorf(`%s: unknown entry; want "name NAME" or "key N BASE64"`, at)
			}
		}
	}
	switch {
	case !seenHeader:
		return content{}, fmt.Errorf("no content; want the format line %q first", header)
	case c.name == "":
		return content{}, errors.New(`no name entry; add one such as "name platform"`)
	case len(c.versions) == 0:
		return content{}, errors.New(`no key entry; add one such as "key 1 BASE64"`)
	}
	return c, nil
}

// marshal returns the key file content of a key.
func marshal(name string, versions map[uint32]*version) []byte {
	var b strings.Builder
	b.WriteString(header + "\n")
	b.WriteString("# byok platform root key: AES-256, one line per version, the highest current.\n")
	b.WriteString("# Secret: keep mode 0600 and a backup. Never change a key or the name, and\n")
	b.WriteString("# remove a version only when nothing wrapped under it remains.\n")
	b.WriteString("name " + name + "\n")
	for _, n := range slices.Sorted(maps.Keys(versions)) {
		fmt.Fprintf(&b, "key %d %s\n", n, base64.StdEncoding.EncodeToString(versions[n].raw[:]))
	}
	return []byte(b.String())
}
