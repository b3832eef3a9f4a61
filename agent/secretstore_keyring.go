package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
	ss "github.com/zalando/go-keyring/secret_service"

	"github.com/authagent/authagent/providers"
)

const (
	// keyringService is the service every authagent secret is filed under.
	keyringService = "authagent"

	// DefaultKeyringTimeout bounds each keyring operation: the Secret Service can block
	// forever on an unlock prompt nobody answers.
	DefaultKeyringTimeout = 15 * time.Second

	// keyringChunkSize is the largest value stored in one entry of a keyring without a
	// tighter limit of its own (the Secret Service has none; big items are slow).
	// chunkSize gives each OS's size.
	keyringChunkSize = 2048

	// windowsEntryLimit is the most bytes go-keyring stores in one Windows Credential
	// Manager entry: it refuses a longer value with ErrSetDataTooBig (the credential
	// blob is the value's bytes as they are, not UTF-16, and Windows caps it at 2560).
	windowsEntryLimit = 2560

	// macOSCommandLimit is the longest `security -i` command line go-keyring sends to
	// store a value on macOS; it refuses a longer one with ErrSetDataTooBig.
	macOSCommandLimit = 4096

	// chunkHeaderPrefix starts the main entry of a value stored in chunks:
	// "authagent:chunked:<gen>:<n>", with the chunks under "<account>#<gen>.<i>".
	chunkHeaderPrefix = "authagent:chunked:"

	// maxChunks caps what a header may claim (8 MiB), so a corrupt header cannot make
	// Get loop for ever. Values written now are at most MaxSecretSize (32 chunks); older
	// agents wrote longer ones.
	maxChunks = 4096

	// pendingSuffix names the marker entry "<account>#pending". It lists the chunk
	// generations ("<gen>:<n> …") that a write of account may leave behind, and is written
	// before the first chunk and deleted once they are gone: the next write or delete of
	// the account finishes what a timeout or a killed agent cut short, also on keyrings
	// that cannot be searched.
	pendingSuffix = "#pending"

	// maxPending caps the generations a marker lists, so it fits in one entry.
	maxPending = 64
)

// ErrKeyringTimeout is wrapped by the error a KeyringStore returns when the keyring did
// not answer in time.
var ErrKeyringTimeout = errors.New("keyring timed out")

// keyringBackend is the part of go-keyring the store uses, so tests can swap it.
type keyringBackend interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

// keyringSearcher is a keyringBackend that can list its entries. go-keyring has no such
// call; the Secret Service has one (systemKeyring on Linux and the BSDs).
type keyringSearcher interface {
	// Accounts returns the user name of every entry filed under service, or an error
	// wrapping errNoSearch when this keyring cannot be searched.
	Accounts(service string) ([]string, error)
}

// errNoSearch says the keyring cannot list its entries; the pending markers are then all
// a store has to find chunks that writes cut short left behind.
var errNoSearch = errors.New("this keyring cannot be searched")

// systemKeyring is the OS keyring through go-keyring.
type systemKeyring struct{}

func (systemKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }

func (systemKeyring) Set(service, user, password string) error {
	return keyring.Set(service, user, password)
}

func (systemKeyring) Delete(service, user string) error { return keyring.Delete(service, user) }

// Accounts searches the Secret Service's login collection, where go-keyring files its
// entries, for the items with attribute service and returns their "username" attributes.
// Elsewhere (macOS Keychain, Windows Credential Manager) it returns errNoSearch.
func (systemKeyring) Accounts(service string) ([]string, error) {
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
	default:
		return nil, errNoSearch
	}
	svc, err := ss.NewSecretService()
	if err != nil {
		return nil, err
	}
	coll := svc.GetLoginCollection()
	if err := svc.Unlock(coll.Path()); err != nil {
		return nil, err
	}
	items, err := svc.SearchItems(coll, map[string]string{"service": service})
	if err != nil {
		return nil, err
	}
	// All reads at once: one after the other they take half a millisecond per item.
	calls := make([]*dbus.Call, len(items))
	for i, item := range items {
		calls[i] = svc.Object("org.freedesktop.secrets", item).Go("org.freedesktop.DBus.Properties.Get", 0, nil,
			"org.freedesktop.Secret.Item", "Attributes")
	}
	users := make([]string, 0, len(items))
	for _, c := range calls {
		<-c.Done
		var attrs map[string]string
		err := c.Store(&attrs)
		var gone dbus.Error
		if errors.As(err, &gone) {
			continue // deleted since the search
		}
		if err != nil {
			return nil, err
		}
		if attrs["username"] != "" {
			users = append(users, attrs["username"])
		}
	}
	return users, nil
}

// KeyringStore is a SecretStore in the OS keyring (Secret Service, macOS Keychain, Windows
// Credential Manager) under service "authagent". Values too long for one entry are split
// into chunks that are written before the entry that points at them, so a crash never
// leaves a half-written value behind. Nor does it leave chunks behind for good: a write
// cut short (a timeout, a cancelled ctx, a killed agent) is tidied by the next write or
// delete of the account, which searches the keyring for the account's chunk entries where
// the keyring can be searched and reads the account's pending marker everywhere; a failed
// write also tidies after itself once its keyring calls have returned.
type KeyringStore struct {
	// Timeout bounds each Get, Set and Delete; zero means DefaultKeyringTimeout.
	Timeout time.Duration
	// Log receives warnings about chunks that could not be cleaned up; nil discards them.
	Log *slog.Logger

	backend keyringBackend
	goos    string // the OS whose keyring limits set the chunk size (chunkSize); "": none
	warning string // set by the opener when the keyring did not answer at start
	// writing serialises Set and Delete (and the tidying after them), so two writers of
	// one account cannot orphan each other's chunks. It is a channel so waiting for it
	// honours ctx.
	writing chan struct{}
}

// NewKeyringStore returns a store in the OS keyring.
func NewKeyringStore() *KeyringStore {
	s := newKeyringStore(systemKeyring{})
	s.goos = runtime.GOOS
	return s
}

// newKeyringStore returns a store on b with keyringChunkSize chunks, whatever the OS.
func newKeyringStore(b keyringBackend) *KeyringStore {
	return &KeyringStore{backend: b, writing: make(chan struct{}, 1)}
}

// Info reports a persistent "keyring" store.
func (s *KeyringStore) Info() StoreInfo {
	return StoreInfo{Kind: "keyring", Persistent: true, Warning: s.warning}
}

// Get returns the secret stored under account, reassembling chunks, or an error wrapping
// providers.ErrSecretNotFound.
func (s *KeyringStore) Get(ctx context.Context, account string) (string, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	v, err := s.get(ctx, account)
	if err != nil {
		return "", fmt.Errorf("keyring get %s: %w", account, err)
	}
	return v, nil
}

func (s *KeyringStore) get(ctx context.Context, account string) (string, error) {
	// A concurrent Set may replace the chunks between reading the header and reading
	// them; reading the header again tells that apart from a damaged entry.
	for attempt := 0; ; attempt++ {
		main, err := keyringCall(ctx, nil, func() (string, error) { return s.backend.Get(keyringService, account) })
		if err != nil {
			return "", err
		}
		gen, n, chunked, err := parseChunkHeader(main)
		if err != nil {
			return "", err
		}
		if !chunked {
			return main, nil
		}
		v, err := s.getChunks(ctx, account, gen, n)
		if errors.Is(err, providers.ErrSecretNotFound) && attempt < 2 {
			continue
		}
		return v, err
	}
}

func (s *KeyringStore) getChunks(ctx context.Context, account, gen string, n int) (string, error) {
	var b strings.Builder
	for i := range n {
		c, err := keyringCall(ctx, nil, func() (string, error) { return s.backend.Get(keyringService, chunkAccount(account, gen, i)) })
		if errors.Is(err, providers.ErrSecretNotFound) {
			// Only a Delete cut short leaves a header without its chunks.
			return "", fmt.Errorf("chunk %d of %d is missing: %w", i+1, n, err)
		}
		if err != nil {
			return "", fmt.Errorf("chunk %d of %d: %w", i+1, n, err)
		}
		b.WriteString(c)
	}
	return b.String(), nil
}

// Set stores value under account. A value longer than MaxSecretSize is refused with an
// error wrapping ErrTooLarge before anything is written. A long value, or one that looks
// like a chunk header, goes into chunks under a fresh generation; the old generation's
// chunks are deleted only after the new value is in place. When Set fails, the keyring
// holds the old value or the new one, and no chunk of the other.
func (s *KeyringStore) Set(ctx context.Context, account, value string) error {
	if err := CheckSecretSize(len(value)); err != nil {
		return fmt.Errorf("keyring set %s: %w", account, err)
	}
	err := s.write(ctx, account, func(ctx context.Context, w *keyringWrite) error { return w.setValue(ctx, account, value) })
	if err != nil {
		return fmt.Errorf("keyring set %s: %w", account, err)
	}
	return nil
}

// Delete removes the secret stored under account and its chunks; a missing account is not
// an error. Chunks go first, so a Delete cut short can simply be run again.
func (s *KeyringStore) Delete(ctx context.Context, account string) error {
	err := s.write(ctx, account, func(ctx context.Context, w *keyringWrite) error { return w.deleteValue(ctx, account) })
	if err != nil {
		return fmt.Errorf("keyring delete %s: %w", account, err)
	}
	return nil
}

// write runs op, one Set or Delete of account, under the write lock. When op fails after
// writing something, the account is tidied before the next write may begin: at once when
// op's keyring calls have all returned, else in the background once they do.
func (s *KeyringStore) write(ctx context.Context, account string, op func(context.Context, *keyringWrite) error) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.lock(ctx); err != nil {
		return err
	}
	w := &keyringWrite{s: s}
	err := op(ctx, w)
	var after func()
	if err != nil && w.wrote {
		// Not op's ctx: it may be what cut op short.
		after = func() { s.rollback(context.WithoutCancel(ctx), account) }
	}
	s.release(w, after)
	return err
}

// rollback tidies account after a write that failed: whatever generation the main entry
// points at now stays, every other chunk entry goes.
func (s *KeyringStore) rollback(ctx context.Context, account string) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	w := &keyringWrite{s: s}
	st, err := w.state(ctx, account)
	if err == nil {
		_, err = w.tidy(ctx, account, st)
	}
	if err != nil {
		s.logger().Warn("could not delete the chunks of a failed keyring write; the next write or delete of the account will",
			"account", account, "err", err)
	}
}

// release runs after (when not nil) and unlocks the store once every keyring call of w
// has returned: at once when they have, else in the background. A call still out after
// the keyring timeout is given up on (after is skipped), so a keyring that never answers
// does not block writing for good; the pending marker lets a later write tidy up after it.
func (s *KeyringStore) release(w *keyringWrite, after func()) {
	idle := w.settled()
	finish := func() {
		if after != nil {
			after()
		}
		s.unlock()
	}
	select {
	case <-idle:
		finish()
		return
	default:
	}
	go func() {
		t := time.NewTimer(s.timeout())
		defer t.Stop()
		select {
		case <-idle:
			finish()
		case <-t.C:
			s.logger().Warn("a keyring call has not returned; writing goes on without it")
			s.unlock()
		}
	}()
}

// sweep tidies every account of which the keyring holds chunk entries or a pending
// marker: what writes cut short left behind, also before the agent last stopped. It needs
// a keyring that can be searched and does nothing on others. It returns how many entries
// it deleted.
func (s *KeyringStore) sweep(ctx context.Context) (int, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	w := &keyringWrite{s: s}
	defer s.release(w, nil)
	users, err := w.accounts(ctx)
	if errors.Is(err, errNoSearch) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	owners := map[string]bool{}
	for _, u := range users {
		if owner, ok := chunkOwner(u); ok {
			owners[owner] = true
		}
	}
	removed := 0
	for _, account := range slices.Sorted(maps.Keys(owners)) {
		st, err := w.state(ctx, account)
		if err != nil {
			return removed, fmt.Errorf("%s: %w", account, err)
		}
		n, err := w.tidy(ctx, account, st)
		removed += n
		if err != nil {
			return removed, fmt.Errorf("%s: %w", account, err)
		}
	}
	return removed, nil
}

// sweepAtStart sweeps the keyring for what writes cut short left behind before the agent
// last stopped, and logs what it did. A starting agent runs it in the background once the
// keyring has answered; writes wait for it.
func (s *KeyringStore) sweepAtStart(ctx context.Context, log *slog.Logger) {
	n, err := s.sweep(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("could not delete the keyring chunks that writes cut short left behind; the next write or delete of each account will", "err", err)
	case n > 0:
		log.Info("deleted keyring chunks that writes cut short left behind", "entries", n)
	}
}

// keyringWrite is one write to the keyring (a Set, a Delete, a rollback or a sweep). It
// counts its keyring calls, so the write lock is held until the last of them has
// returned, even one that outlived its ctx: otherwise it could add a chunk after the next
// writer had tidied the account.
type keyringWrite struct {
	s     *KeyringStore
	wrote bool // a Set or Delete was sent to the keyring

	mu   sync.Mutex
	out  int           // calls that have not returned
	idle chan struct{} // closed when out drops to 0; nil while nobody waits
}

func (w *keyringWrite) begin() {
	w.mu.Lock()
	w.out++
	w.mu.Unlock()
}

func (w *keyringWrite) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out--
	if w.out == 0 && w.idle != nil {
		close(w.idle)
		w.idle = nil
	}
}

// settled returns a channel that is closed once no call of w is out: at once when none is.
func (w *keyringWrite) settled() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if w.out == 0 {
		close(ch)
	} else {
		w.idle = ch
	}
	return ch
}

// accountState is what the keyring holds for one account.
type accountState struct {
	gen     string     // the chunk generation the main entry points at; "" for none
	n       int        // its number of chunks
	pending []chunkGen // the generations the pending marker lists
	marker  bool       // the pending marker exists
}

// chunkGen is a generation of chunks: "<account>#<gen>.0" to "<account>#<gen>.<n-1>".
type chunkGen struct {
	gen string
	n   int
}

func (w *keyringWrite) setValue(ctx context.Context, account, value string) error {
	st, err := w.state(ctx, account)
	if err != nil {
		return err
	}
	var gen string
	var chunks []string
	size := chunkSize(w.s.goos, account)
	if len(value) > size || strings.HasPrefix(value, chunkHeaderPrefix) {
		if gen, err = newGeneration(); err != nil {
			return err
		}
		chunks = splitChunks(value, size)
	}

	// Before any chunk is written, the marker names every generation this write may leave
	// behind: its own, should it be cut short, and the old one, should the tidying be.
	todo := st.pending
	if st.n > 0 {
		todo = addPending(todo, chunkGen{st.gen, st.n})
	}
	if gen != "" {
		todo = addPending(todo, chunkGen{gen, len(chunks)})
	}
	if !slices.Equal(todo, st.pending) {
		if err := w.set(ctx, account+pendingSuffix, formatPending(todo)); err != nil {
			return fmt.Errorf("pending marker: %w", err)
		}
		st.marker = true
	}

	if gen == "" {
		if err := w.set(ctx, account, value); err != nil {
			return err
		}
	} else {
		for i, c := range chunks {
			if err := w.set(ctx, chunkAccount(account, gen, i), c); err != nil {
				return fmt.Errorf("chunk %d of %d: %w", i+1, len(chunks), err)
			}
		}
		if err := w.set(ctx, account, chunkHeader(gen, len(chunks))); err != nil {
			return err
		}
	}

	// The value is in place. Tidying that fails leaves only unreferenced entries, which
	// the marker hands to the next write or delete of the account. Without a marker there
	// is nothing to tidy (chunks are written only after one), so a plain value costs no
	// search of the keyring, which grows with every profile.
	if !st.marker && len(todo) == 0 && gen == "" {
		return nil
	}
	st.gen, st.n, st.pending = gen, len(chunks), todo
	if _, err := w.tidy(ctx, account, st); err != nil {
		w.s.logger().Warn("could not delete old keyring chunks; the next write or delete of the account will",
			"account", account, "err", err)
	}
	return nil
}

func (w *keyringWrite) deleteValue(ctx context.Context, account string) error {
	st, err := w.state(ctx, account)
	if err != nil {
		return err
	}
	// Every chunk first, then the marker, then the entry that points at them: a Delete
	// cut short leaves a header without chunks (which reads as not found) to run again on.
	if st.n > 0 {
		st.pending = addPending(st.pending, chunkGen{st.gen, st.n})
	}
	st.gen, st.n = "", 0
	if st.marker || len(st.pending) > 0 {
		if _, err := w.tidy(ctx, account, st); err != nil {
			return err
		}
	}
	return w.del(ctx, account)
}

// state reads the main entry and the pending marker of account. A malformed header is
// taken for a plain value so it can still be overwritten or deleted; a malformed marker
// entry is skipped.
func (w *keyringWrite) state(ctx context.Context, account string) (accountState, error) {
	var st accountState
	main, err := w.get(ctx, account)
	switch {
	case errors.Is(err, providers.ErrSecretNotFound):
	case err != nil:
		return st, err
	default:
		if gen, n, chunked, err := parseChunkHeader(main); err == nil && chunked {
			st.gen, st.n = gen, n
		}
	}
	marker, err := w.get(ctx, account+pendingSuffix)
	switch {
	case errors.Is(err, providers.ErrSecretNotFound):
	case err != nil:
		return st, fmt.Errorf("pending marker: %w", err)
	default:
		st.marker = true
		st.pending = parsePending(marker)
	}
	return st, nil
}

// tidy deletes every chunk entry of account but those of generation st.gen: every one the
// keyring holds where it can be searched, else those of the generations st.pending names.
// The marker goes last, once they are gone, so a tidy cut short is finished by the next.
// It returns how many entries it deleted.
func (w *keyringWrite) tidy(ctx context.Context, account string, st accountState) (int, error) {
	var strays []string
	users, searchErr := w.accounts(ctx)
	if searchErr == nil {
		for _, u := range users {
			if gen, ok := chunkGenOf(account, u); ok && gen != st.gen {
				strays = append(strays, u)
			}
			if u == account+pendingSuffix {
				st.marker = true
			}
		}
	} else {
		for _, p := range st.pending {
			if p.gen == st.gen {
				continue
			}
			for i := range p.n {
				strays = append(strays, chunkAccount(account, p.gen, i))
			}
		}
	}
	removed := 0
	for _, u := range strays {
		if err := w.del(ctx, u); err != nil {
			return removed, err
		}
		removed++
	}
	if searchErr != nil && !errors.Is(searchErr, errNoSearch) {
		return removed, fmt.Errorf("search the keyring: %w", searchErr)
	}
	if st.marker {
		if err := w.del(ctx, account+pendingSuffix); err != nil {
			return removed, fmt.Errorf("pending marker: %w", err)
		}
		removed++
	}
	return removed, nil
}

func (w *keyringWrite) get(ctx context.Context, user string) (string, error) {
	return keyringCall(ctx, w, func() (string, error) { return w.s.backend.Get(keyringService, user) })
}

func (w *keyringWrite) set(ctx context.Context, user, value string) error {
	w.wrote = true
	_, err := keyringCall(ctx, w, func() (string, error) { return "", w.s.backend.Set(keyringService, user, value) })
	return err
}

// del deletes one entry; a missing one is not an error.
func (w *keyringWrite) del(ctx context.Context, user string) error {
	w.wrote = true
	_, err := keyringCall(ctx, w, func() (string, error) { return "", w.s.backend.Delete(keyringService, user) })
	if errors.Is(err, providers.ErrSecretNotFound) {
		return nil
	}
	return err
}

// accounts lists the user names under keyringService, or fails with errNoSearch.
func (w *keyringWrite) accounts(ctx context.Context) ([]string, error) {
	search, ok := w.s.backend.(keyringSearcher)
	if !ok {
		return nil, errNoSearch
	}
	return keyringCall(ctx, w, func() ([]string, error) { return search.Accounts(keyringService) })
}

// keyringCall runs f in its own goroutine and gives up when ctx is done: a keyring waiting
// on an unlock prompt may never answer. The goroutine is left to finish on its own; w,
// when not nil, counts it as out until it has (and before its result is seen).
func keyringCall[T any](ctx context.Context, w *keyringWrite, f func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, context.Cause(ctx)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	if w != nil {
		w.begin()
	}
	go func() {
		v, err := f()
		if w != nil {
			w.end()
		}
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if errors.Is(r.err, keyring.ErrNotFound) {
			return zero, providers.ErrSecretNotFound
		}
		return r.v, r.err
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	}
}

func (s *KeyringStore) timeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultKeyringTimeout
	}
	return s.Timeout
}

func (s *KeyringStore) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.timeout()
	return context.WithTimeoutCause(ctx, d, &keyringTimeoutError{d: d})
}

func (s *KeyringStore) lock(ctx context.Context) error {
	select {
	case s.writing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (s *KeyringStore) unlock() { <-s.writing }

func (s *KeyringStore) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// keyringTimeoutError says what happened and what to do about it.
type keyringTimeoutError struct{ d time.Duration }

func (e *keyringTimeoutError) Error() string {
	return fmt.Sprintf("keyring did not answer within %s: it may be locked; unlock it "+
		"(log in to the desktop session, or run `gnome-keyring-daemon --unlock`) and try again", e.d)
}

func (e *keyringTimeoutError) Is(target error) bool {
	return target == ErrKeyringTimeout || target == context.DeadlineExceeded
}

func chunkAccount(account, gen string, i int) string {
	return account + "#" + gen + "." + strconv.Itoa(i)
}

// chunkGenOf returns the generation of user when it is a chunk entry of account
// ("<account>#<gen>.<i>").
func chunkGenOf(account, user string) (string, bool) {
	rest, ok := strings.CutPrefix(user, account+"#")
	if !ok {
		return "", false
	}
	gen, i, ok := strings.Cut(rest, ".")
	if !ok || !validGeneration(gen) {
		return "", false
	}
	if n, err := strconv.Atoi(i); err != nil || n < 0 {
		return "", false
	}
	return gen, true
}

// chunkOwner returns the account that user is a chunk entry or the pending marker of.
func chunkOwner(user string) (string, bool) {
	i := strings.LastIndexByte(user, '#')
	if i <= 0 {
		return "", false
	}
	account := user[:i]
	if _, ok := chunkGenOf(account, user); ok || user == account+pendingSuffix {
		return account, true
	}
	return "", false
}

func chunkHeader(gen string, n int) string {
	return chunkHeaderPrefix + gen + ":" + strconv.Itoa(n)
}

// parseChunkHeader reports whether v is a chunk header and which chunks it names. The
// error never quotes v: it may be a secret.
func parseChunkHeader(v string) (gen string, n int, chunked bool, err error) {
	rest, ok := strings.CutPrefix(v, chunkHeaderPrefix)
	if !ok {
		return "", 0, false, nil
	}
	gen, count, ok := strings.Cut(rest, ":")
	if !ok || !validGeneration(gen) {
		return "", 0, false, errors.New("entry has a malformed chunk header")
	}
	n, err = strconv.Atoi(count)
	if err != nil || n < 1 || n > maxChunks {
		return "", 0, false, errors.New("entry has a malformed chunk header")
	}
	return gen, n, true, nil
}

func validGeneration(gen string) bool {
	_, err := hex.DecodeString(gen)
	return gen != "" && err == nil
}

// formatPending writes a pending marker: "<gen>:<n>" for each generation, space-separated.
func formatPending(gens []chunkGen) string {
	parts := make([]string, len(gens))
	for i, g := range gens {
		parts[i] = g.gen + ":" + strconv.Itoa(g.n)
	}
	return strings.Join(parts, " ")
}

// parsePending reads a pending marker, skipping what is not a generation.
func parsePending(v string) []chunkGen {
	var gens []chunkGen
	for _, f := range strings.Fields(v) {
		gen, count, ok := strings.Cut(f, ":")
		n, err := strconv.Atoi(count)
		if ok && validGeneration(gen) && err == nil && n >= 1 && n <= maxChunks {
			gens = addPending(gens, chunkGen{gen, n})
		}
	}
	return gens
}

// addPending returns gens with g added once, dropping the oldest past maxPending.
func addPending(gens []chunkGen, g chunkGen) []chunkGen {
	for _, have := range gens {
		if have.gen == g.gen {
			return gens
		}
	}
	out := append(slices.Clone(gens), g)
	if len(out) > maxPending {
		out = out[len(out)-maxPending:]
	}
	return out
}

func newGeneration() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("chunk generation: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// chunkSize is the most bytes a value of account, and each of its chunks, may have in one
// keyring entry on the OS goos, as go-keyring (v0.2.8) enforces it there: 2560 on
// Windows; on macOS what keeps `security -i`'s command line within 4096 bytes for the
// longest chunk name of account (about 2900 for a 64-byte account), since go-keyring
// base64-encodes the value into it; keyringChunkSize elsewhere. It is at least 64, so a
// value always splits; an account name too long for even that fails at the keyring.
func chunkSize(goos, account string) int {
	switch goos {
	case "windows":
		return windowsEntryLimit
	case "darwin":
		longest := chunkAccount(account, strings.Repeat("0", 16), maxChunks)
		return max(64, macOSValueLimit(keyringService, longest))
	}
	return keyringChunkSize
}

// macOSValueLimit is the most value bytes go-keyring stores on macOS under service and
// account: it sends `add-generic-password -U -s SERVICE -a ACCOUNT -w
// go-keyring-base64:BASE64` and a newline to `security -i`, each word shell-quoted, and
// refuses a line over macOSCommandLimit. Every word is counted as if quoted (two quotes,
// and four more bytes per single quote inside), which is never less than its real length.
func macOSValueLimit(service, account string) int {
	quoted := func(s string) int { return 2 + len(s) + 4*strings.Count(s, "'") }
	room := macOSCommandLimit - len("add-generic-password -U -s ") - quoted(service) -
		len(" -a ") - quoted(account) - len(" -w ") - quoted("go-keyring-base64:") - len("\n")
	if room < 4 {
		return 0
	}
	return room / 4 * 3 // base64: 4 bytes out for every 3 in
}

// splitChunks cuts v into pieces of at most size bytes without splitting a UTF-8
// sequence, since some keyrings store values as text.
func splitChunks(v string, size int) []string {
	var chunks []string
	for len(v) > size {
		cut := size
		for cut > size-utf8.UTFMax && !utf8.RuneStart(v[cut]) {
			cut--
		}
		chunks = append(chunks, v[:cut])
		v = v[cut:]
	}
	return append(chunks, v)
}
