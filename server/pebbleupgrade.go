package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"

	pebblev1 "github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/atomicfs"
)

// storeFormat is the Pebble format major version new stores are created
// at, and the one an older store is ratcheted to when it opens. It is named
// rather than pebble.FormatNewest so that a Pebble update never moves a
// store's format (and with it the oldest binary that can still open it)
// without a decision here. FormatTableFormatV6 brings the checksummed
// sstable footer, columnar blocks and WAL sync chunks (a torn WAL tail is
// told apart from corruption); the value-separation formats after it are
// left out because synod does not separate values.
// docs/architecture.md#storage-format records what each binary opens.
const storeFormat = pebble.FormatTableFormatV6

// formatMarker is the name of Pebble's format-version marker file (Pebble
// keeps its own constant unexported).
const formatMarker = "format-version"

// needsV1Upgrade reports whether the database in dir was written in a
// format that Pebble v2 refuses: synod releases built on Pebble v1 never set
// a format, so their stores are at v1's default, FormatMostCompatible, which
// has no format-version marker and names its manifest in a CURRENT file
// (Pebble v2 fails with "was written in format major version 1, which is no
// longer supported"); a marker below pebble.FormatMinSupported is refused
// too ("which is no longer supported"). A missing or new directory needs
// nothing.
func needsV1Upgrade(dir string) (bool, error) {
	ls, err := vfs.Default.List(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read database directory: %w", err)
	}
	m, vers, err := atomicfs.LocateMarkerInListing(vfs.Default, dir, formatMarker, ls)
	if err != nil {
		return false, fmt.Errorf("read database format: %w", err)
	}
	if err := m.Close(); err != nil {
		return false, fmt.Errorf("read database format: %w", err)
	}
	if vers == "" {
		return slices.Contains(ls, "CURRENT"), nil
	}
	v, err := strconv.ParseUint(vers, 10, 64)
	if err != nil {
		return false, fmt.Errorf("read database format %q: %w", vers, err)
	}
	return pebble.FormatMajorVersion(v) < pebble.FormatMinSupported, nil
}

// upgradeV1Store brings a database written by a Pebble v1 release to a
// format Pebble v2 opens: it opens it with Pebble v1 (replaying its WAL,
// which may sit in walDir), ratchets it to v1's newest format, flushes and
// closes it. Each ratchet step is made durable by Pebble before the next
// (an atomic marker swap), so a crash midway leaves a database that v1
// opens and this upgrade finishes at the next start; once the marker says
// pebblev1.FormatNewest, v2 opens it and ratchets it on to storeFormat.
// The one informational line says the directory can no longer be opened by
// the previous release.
func upgradeV1Store(dir, walDir string, log *slog.Logger) error {
	db, err := pebblev1.Open(dir, &pebblev1.Options{WALDir: walDir, Logger: memberPebbleLogger{log}})
	if err != nil {
		return fmt.Errorf("open with Pebble v1 to upgrade: %w", err)
	}
	from := db.FormatMajorVersion()
	err = db.RatchetFormatMajorVersion(pebblev1.FormatNewest)
	if err == nil {
		err = db.Flush()
	}
	if err = errors.Join(err, db.Close()); err != nil {
		return fmt.Errorf("upgrade the database from Pebble v1's format: %w", err)
	}
	log.Info("upgraded the database from Pebble v1's format; releases built on Pebble v1 can no longer open it",
		"dir", dir, "from-format", from.String(), "to-format", pebblev1.FormatNewest.String(),
		"then", storeFormat.String())
	return nil
}

// upgradeIfV1 runs upgradeV1Store when the database in dir needs it. Only
// the real disk is checked: a test's in-memory or fault-injecting
// filesystem (Config.FS) never holds a store written by Pebble v1.
func upgradeIfV1(c *Config, dir string, log *slog.Logger) error {
	if c.FS != nil {
		return nil
	}
	old, err := needsV1Upgrade(dir)
	if err != nil || !old {
		return err
	}
	return upgradeV1Store(dir, c.WALDir, log)
}
