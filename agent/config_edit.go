package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/authagent/authagent/providers"
)

// Byte-preserving edits: PUT and DELETE of a profile rewrite its section of the config
// file and keep the rest byte for byte; the file is replaced atomically.
//
// An agent with thousands of profiles edits a file of megabytes, so it keeps the file's
// text from its last read or write (a *configText, known to load) and, when the file on
// disk still holds exactly that text, edits it without parsing the file again: the edit
// replaces whole sections, so a file that loaded still loads when the section it puts in
// loads on its own (which WriteProfile checks). Any other file is scanned and, after the
// edit, parsed whole, and refused if it would not load.

// ErrNoSuchProfile is returned (wrapped) by RemoveProfile when the file has no such profile.
var ErrNoSuchProfile = errors.New("no such profile")

// WriteProfile defines or replaces profile name in the config file at path, keeping the
// rest of the file byte for byte. The profile's section — its [profile.NAME] header, its
// sub-tables ([profile.NAME.headers]) and everything up to the next other table header —
// is replaced by freshly written TOML; without one, a section is appended. Comment lines
// directly above a header (no blank line in between) belong to that header and are kept.
// The file (and its directory, 0700) is created 0600 when missing; an existing file keeps
// its mode. The write is atomic, and refused when the result would not load.
func WriteProfile(path, name string, cfg *providers.ProfileConfig) error {
	_, err := writeProfile(path, name, cfg, nil)
	return err
}

// RemoveProfile removes profile name from the config file at path: its header, its
// sub-tables and the comment lines directly above the header (no blank line in between),
// plus one run of blank lines that separated it from its neighbour. The rest of the file
// stays byte for byte. A profile that is not in the file is an error wrapping
// ErrNoSuchProfile.
func RemoveProfile(path, name string) error {
	_, err := removeProfile(path, name, nil)
	return err
}

// writeProfile is WriteProfile given known, the file's text as the caller last read or
// wrote it (nil when it has none; see editConfig). It returns the text to pass next time.
func writeProfile(path, name string, cfg *providers.ProfileConfig, known *configText) (*configText, error) {
	if !validProfileName(name) {
		return known, fmt.Errorf("profile name %q: use letters, digits, '.', '_' and '-' (at most 64)", name)
	}
	if cfg == nil {
		return known, errors.New("write profile: no configuration")
	}
	var body bytes.Buffer
	body.WriteString("[profile." + configKeyPart(name) + "]\n")
	// Inline tables keep headers, metadata and env inside the profile's one section.
	if err := toml.NewEncoder(&body).SetTablesInline(true).Encode(cfg); err != nil {
		return known, fmt.Errorf("write profile %s: %w", name, err)
	}
	// TOML holds UTF-8 only; the encoder would silently change other bytes. Refuse a value
	// that does not come back as it went in. A section that loads on its own is also what
	// lets an edit of a file known to load skip parsing the whole result.
	back, err := ParseConfig(path, body.Bytes())
	if err != nil || !reflect.DeepEqual(back.Profiles[name], cfg) {
		return known, fmt.Errorf("write profile %s: a value cannot be written to the config file as it is (is it valid UTF-8?)", name)
	}
	return editConfig(path, name, known, func(ed *configText, regions []configRegion) error {
		section := back.text.withNewlines(ed.crlfs > 0)
		if len(regions) == 0 {
			ed.appendSection(section)
			return nil
		}
		for i := len(regions) - 1; i > 0; i-- {
			ed.remove(regions[i])
		}
		r := regions[0]
		ed.replace(r.start, r.end, section)
		return nil
	})
}

// removeProfile is RemoveProfile given known, as writeProfile.
func removeProfile(path, name string, known *configText) (*configText, error) {
	return editConfig(path, name, known, func(ed *configText, regions []configRegion) error {
		if len(regions) == 0 {
			return fmt.Errorf("profile %s: %w", name, ErrNoSuchProfile)
		}
		for i := len(regions) - 1; i >= 0; i-- {
			ed.remove(regions[i])
		}
		return nil
	})
}

// editConfig reads the file, locates profile name, lets edit change the text and writes
// the result atomically if it still loads. When known (the file's text as the caller
// last read or wrote it, known to load) is what the file holds, edit changes known in
// place and the result is not parsed again; otherwise the file is scanned afresh and the
// result parsed whole. It returns the text to pass next time: the new one after a write;
// known when nothing was changed (edit refused before changing anything), nil when
// unknown.
func editConfig(path, name string, known *configText, edit func(*configText, []configRegion) error) (*configText, error) {
	// Edit the file a symlink points to (dotfile managers), not the link.
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	}
	mode, same, err := fileHolds(target, known)
	if err != nil {
		return known, fmt.Errorf("read config: %w", err)
	}
	ed, loads := known, true
	if !same {
		data, err := os.ReadFile(target)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read config: %w", err)
		}
		doc, err := scanConfig(data)
		if err != nil {
			if _, perr := ParseConfig(path, data); perr != nil {
				err = perr
			}
			return nil, fmt.Errorf("fix the config file by hand first: %w", err)
		}
		ed, loads = newConfigText(data, doc), false
		ed.orig = make([]int, ed.len())
		for i := range ed.orig {
			ed.orig[i] = i + 1
		}
	}
	keep := ed
	if !loads {
		keep = nil
	}
	regions, err := ed.locate(name)
	if err != nil {
		return keep, fmt.Errorf("%s: %w", path, err)
	}
	if err := edit(ed, regions); err != nil {
		return keep, err
	}
	if !loads {
		if _, err := ParseConfig(path, []byte(ed.text.String())); err != nil {
			// The lines of the edited text are not the file's: point at the file's own.
			ed.fileLines(err)
			return nil, fmt.Errorf("the edited file would not load, so it was left as it was: %w", err)
		}
	}
	if err := replaceFile(target, mode, ed.text.writeTo); err != nil {
		return nil, err
	}
	ed.orig = nil
	return ed, nil
}

// checkEditable reports why the config file at path could not be edited now, before a
// caller does anything it could not undo: nil when the file holds known (which loads) or
// loads as it is; else the load error, with its line.
func checkEditable(path string, known *configText) error {
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	}
	if _, same, err := fileHolds(target, known); err != nil || same {
		return err
	}
	data, err := os.ReadFile(target)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read config: %w", err)
	}
	if _, err := ParseConfig(path, data); err != nil {
		return fmt.Errorf("fix the config file first: %w", err)
	}
	return nil
}

// fileHolds returns the mode of the file at path (0600 when there is none) and whether
// it holds exactly the text of known, which it reads in chunks, so that checking a large
// file allocates little. A missing file is no error.
func fileHolds(path string, known *configText) (mode fs.FileMode, same bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0o600, known != nil && known.text.size == 0, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	if known == nil || fi.Size() != int64(known.text.size) {
		return fi.Mode().Perm(), false, nil
	}
	return fi.Mode().Perm(), known.text.sameAs(f), nil
}

// configText is a config file as lines, with what an edit needs to know about them:
// where the table headers are and whose profile each belongs to, which lines hold only
// a comment, and which keys define a profile outside its own tables. An edit changes it
// in place, so that it stays in step with the file without the file being parsed again.
// It keeps no pointer per line, and its text in a few large pieces, so that a file of
// ten thousand profiles costs little memory and an edit copies little.
type configText struct {
	text    rope
	starts  []int32      // where each line starts; each line ends with its "\n", the last may have none
	comment []bool       // for each line: it holds nothing but a comment
	headers []textHeader // every table header, in line order
	strays  []textKey    // keys of a profile outside its own tables, in file order
	crlfs   int          // lines ending in "\r\n"
	// For each line, its number in the file as read; 0 for a line an edit wrote. Only an
	// edit of a file not known to load, whose result is parsed whole, needs it.
	orig []int
}

// textHeader is a table header: line is a line index; profile is set (and owned true) for
// the tables of a profile, [profile.NAME] and [profile.NAME.…].
type textHeader struct {
	line    int
	profile string
	owned   bool
}

// textKey is a key that belongs to a profile, at line (a line index).
type textKey struct {
	line    int
	profile string
}

// newConfigText indexes data, whose scan is doc.
func newConfigText(data []byte, doc *configDoc) *configText {
	src := string(data)
	t := &configText{text: ropeOf(src)}
	for off := 0; off < len(src); {
		t.starts = append(t.starts, int32(off))
		i := strings.IndexByte(src[off:], '\n')
		if i < 0 {
			break
		}
		if i > 0 && src[off+i-1] == '\r' {
			t.crlfs++
		}
		off += i + 1
	}
	t.comment = make([]bool, len(t.starts))
	for l := range doc.comments {
		if l >= 1 && l <= len(t.starts) {
			t.comment[l-1] = true
		}
	}
	for _, ent := range doc.entries {
		name, owned := profileOfKey(ent.key)
		if ent.header {
			t.headers = append(t.headers, textHeader{line: ent.line - 1, profile: name, owned: owned})
			continue
		}
		if !owned {
			continue
		}
		if ent.table < 0 {
			t.strays = append(t.strays, textKey{line: ent.line - 1, profile: name})
		} else if table, ok := profileOfKey(doc.entries[ent.table].key); !ok || table != name {
			t.strays = append(t.strays, textKey{line: ent.line - 1, profile: name})
		}
	}
	return t
}

// profileOfKey is the profile a full key belongs to: profile.NAME and below.
func profileOfKey(key []string) (string, bool) {
	if len(key) >= 2 && key[0] == "profile" {
		return key[1], true
	}
	return "", false
}

func (t *configText) len() int { return len(t.starts) }

// offset is where line i starts; the text's size for i = len().
func (t *configText) offset(i int) int {
	if i >= len(t.starts) {
		return t.text.size
	}
	return int(t.starts[i])
}

// line is line i with its line ending.
func (t *configText) line(i int) string { return t.text.slice(t.offset(i), t.offset(i+1)) }

func (t *configText) blank(i int) bool { return strings.TrimSpace(t.line(i)) == "" }

// configRegion is a run of one profile's table headers and their contents: lines
// [start, end), 0-based, and the comment lines directly above it from above on.
type configRegion struct {
	above, start, end int
}

// locate finds the regions of profile name. It refuses profiles (partly) defined outside
// their own tables, by dotted keys or inline tables, which a section edit cannot handle.
func (t *configText) locate(name string) ([]configRegion, error) {
	for _, k := range t.strays {
		if k.profile == name {
			return nil, fmt.Errorf("line %d: profile %s is defined outside its [profile.%s] table; edit it by hand", k.line+1, name, configKeyPart(name))
		}
	}
	mine := func(i int) bool { return t.headers[i].owned && t.headers[i].profile == name }
	var regions []configRegion
	for i := 0; i < len(t.headers); i++ {
		if !mine(i) {
			continue
		}
		j := i
		for j+1 < len(t.headers) && mine(j+1) {
			j++
		}
		r := configRegion{start: t.headers[i].line}
		if j+1 < len(t.headers) {
			r.end = t.attachedAbove(t.headers[j+1].line, r.start+1)
		} else {
			r.end = t.len()
		}
		for r.end > r.start+1 && t.blank(r.end-1) {
			r.end--
		}
		lo := 0
		if len(regions) > 0 {
			lo = regions[len(regions)-1].end
		}
		r.above = t.attachedAbove(r.start, lo)
		regions = append(regions, r)
		i = j
	}
	return regions, nil
}

// attachedAbove returns the first line of the comment block directly above line h, not
// going above line lo.
func (t *configText) attachedAbove(h, lo int) int {
	for h > lo && t.comment[h-1] {
		h--
	}
	return h
}

// withNewlines returns t with its lines ending in "\r\n" instead of "\n" when crlf is
// set (the file's line endings), else t. Only a section's small text is converted.
func (t *configText) withNewlines(crlf bool) *configText {
	if !crlf {
		return t
	}
	c := *t
	var b strings.Builder
	c.starts = make([]int32, t.len())
	c.crlfs = 0
	for i := range t.len() {
		l := t.line(i)
		if s, ok := strings.CutSuffix(l, "\n"); ok {
			l = s + "\r\n"
		}
		c.starts[i] = int32(b.Len())
		b.WriteString(l)
		if strings.HasSuffix(l, "\r\n") {
			c.crlfs++
		}
	}
	c.text = ropeOf(b.String())
	return &c
}

// sub is lines [i, j) of t as a text of their own.
func (t *configText) sub(i, j int) *configText {
	c := &configText{text: ropeOf(t.text.slice(t.offset(i), t.offset(j))), comment: slices.Clone(t.comment[i:j])}
	for k := i; k < j; k++ {
		c.starts = append(c.starts, int32(t.offset(k)-t.offset(i)))
		if strings.HasSuffix(t.line(k), "\r\n") {
			c.crlfs++
		}
	}
	if t.orig != nil {
		c.orig = slices.Clone(t.orig[i:j])
	}
	for _, h := range t.headers {
		if h.line >= i && h.line < j {
			h.line -= i
			c.headers = append(c.headers, h)
		}
	}
	for _, k := range t.strays {
		if k.line >= i && k.line < j {
			k.line -= i
			c.strays = append(c.strays, k)
		}
	}
	return c
}

// replace puts the lines of with (nil: none) in place of lines [start, end), keeping
// what is known about every line in step. Lines of with keep their orig if they have
// one, else get 0 (written by the edit).
func (t *configText) replace(start, end int, with *configText) {
	if with == nil {
		with = &configText{}
	}
	from, to := t.offset(start), t.offset(end)
	for i := start; i < end; i++ {
		if strings.HasSuffix(t.line(i), "\r\n") {
			t.crlfs--
		}
	}
	t.crlfs += with.crlfs
	t.text.replace(from, to, with.text.String())

	moved := make([]int32, with.len())
	for i, s := range with.starts {
		moved[i] = s + int32(from)
	}
	delta := int32(with.text.size - (to - from))
	for i := end; i < len(t.starts); i++ {
		t.starts[i] += delta
	}
	t.starts = slices.Replace(t.starts, start, end, moved...)
	t.comment = slices.Replace(t.comment, start, end, with.comment...)
	if t.orig != nil {
		orig := with.orig
		if orig == nil {
			orig = make([]int, with.len())
		}
		t.orig = slices.Replace(t.orig, start, end, orig...)
	}
	shift := with.len() - (end - start)
	t.headers = spliceLines(t.headers, start, end, shift, with.headers,
		func(h textHeader) int { return h.line }, func(h *textHeader, d int) { h.line += d })
	t.strays = spliceLines(t.strays, start, end, shift, with.strays,
		func(k textKey) int { return k.line }, func(k *textKey, d int) { k.line += d })
}

// spliceLines updates a list of things at lines, in line order, for lines [start, end)
// replaced by end-start+shift lines holding ins (at lines counted from start).
func spliceLines[T any](list []T, start, end, shift int, ins []T, line func(T) int, move func(*T, int)) []T {
	lo, _ := slices.BinarySearchFunc(list, start, func(x T, l int) int { return line(x) - l })
	hi, _ := slices.BinarySearchFunc(list, end, func(x T, l int) int { return line(x) - l })
	for i := hi; i < len(list); i++ {
		move(&list[i], shift)
	}
	moved := make([]T, len(ins))
	for i, x := range ins {
		move(&x, start)
		moved[i] = x
	}
	return slices.Replace(list, lo, hi, moved...)
}

// catTexts joins small texts (a section, a blank line) into one.
func catTexts(parts ...*configText) *configText {
	c := &configText{}
	anyOrig := false
	for _, p := range parts {
		anyOrig = anyOrig || p.orig != nil
	}
	var b strings.Builder
	for _, p := range parts {
		base := c.len()
		for _, s := range p.starts {
			c.starts = append(c.starts, s+int32(b.Len()))
		}
		b.WriteString(p.text.String())
		c.comment = append(c.comment, p.comment...)
		c.crlfs += p.crlfs
		if anyOrig {
			orig := p.orig
			if orig == nil {
				orig = make([]int, p.len())
			}
			c.orig = append(c.orig, orig...)
		}
		for _, h := range p.headers {
			h.line += base
			c.headers = append(c.headers, h)
		}
		for _, k := range p.strays {
			k.line += base
			c.strays = append(c.strays, k)
		}
	}
	c.text = ropeOf(b.String())
	return c
}

// fileLines changes the line numbers of the *ConfigErrors in err (one, or joined) from
// lines of the edited text to lines of the file as read. An error on a line the edit
// wrote keeps no line number.
func (t *configText) fileLines(err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			t.fileLines(e)
		}
		return
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line <= 0 {
		return
	}
	if ce.Line <= len(t.orig) {
		ce.Line = t.orig[ce.Line-1]
	} else {
		ce.Line = 0
	}
}

// remove deletes a region with the comments above it and the blank lines after it; at the
// end of the file, the blank lines before it instead, so the file ends with its last table.
func (t *configText) remove(r configRegion) {
	start, end := r.above, r.end
	for end < t.len() && t.blank(end) {
		end++
	}
	if end == t.len() {
		for start > 0 && t.blank(start-1) {
			start--
		}
	}
	t.replace(start, end, nil)
}

// appendSection adds a section at the end, after one blank line.
func (t *configText) appendSection(section *configText) {
	n := t.len()
	if n == 0 {
		t.replace(0, 0, section)
		return
	}
	nl := "\n"
	if t.crlfs > 0 {
		nl = "\r\n"
	}
	last := t.sub(n-1, n)
	if l := last.text.String(); !strings.HasSuffix(l, "\n") {
		if strings.HasSuffix(l+nl, "\r\n") {
			last.crlfs++
		}
		last.text = ropeOf(l + nl)
	}
	parts := []*configText{last}
	if strings.TrimSpace(last.text.String()) != "" {
		parts = append(parts, &configText{text: ropeOf(nl), starts: []int32{0}, comment: []bool{false}, crlfs: strings.Count(nl, "\r")})
	}
	t.replace(n-1, n, catTexts(append(parts, section)...))
}

// rope is a text held in pieces, so that replacing a part of a large text copies only
// what goes in; the pieces are joined again when there are more than ropePieces.
type rope struct {
	pieces []string
	size   int
}

const ropePieces = 32

func ropeOf(s string) rope {
	if s == "" {
		return rope{}
	}
	return rope{pieces: []string{s}, size: len(s)}
}

func (r rope) String() string {
	if len(r.pieces) == 1 {
		return r.pieces[0]
	}
	return strings.Join(r.pieces, "")
}

// span is the pieces of text [from, to), cut to size.
func (r rope) span(from, to int) []string {
	var out []string
	off := 0
	for _, p := range r.pieces {
		lo, hi := off, off+len(p)
		off = hi
		if hi <= from || lo >= to {
			continue
		}
		out = append(out, p[max(from, lo)-lo:min(to, hi)-lo])
	}
	return out
}

// slice is text [from, to): a line lies within one piece, since edits replace whole lines.
func (r rope) slice(from, to int) string {
	s := r.span(from, to)
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s, "")
}

func (r *rope) replace(from, to int, with string) {
	pieces := r.span(0, from)
	if with != "" {
		pieces = append(pieces, with)
	}
	pieces = append(pieces, r.span(to, r.size)...)
	r.size += len(with) - (to - from)
	if len(pieces) > ropePieces {
		pieces = []string{strings.Join(pieces, "")}
	}
	r.pieces = pieces
}

// sameAs reports whether rd yields exactly the text, reading it in chunks.
func (r rope) sameAs(rd io.Reader) bool {
	buf := make([]byte, 32<<10)
	for _, p := range r.pieces {
		for p != "" {
			n := min(len(buf), len(p))
			if _, err := io.ReadFull(rd, buf[:n]); err != nil || string(buf[:n]) != p[:n] {
				return false
			}
			p = p[n:]
		}
	}
	n, _ := io.ReadFull(rd, buf[:1])
	return n == 0
}

func (r rope) writeTo(w io.Writer) error {
	for _, p := range r.pieces {
		if _, err := io.WriteString(w, p); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic replaces path with data: a temporary file in the same directory, synced,
// then renamed over it, so a reader sees the old file or the new one, never a torn one.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	return replaceFile(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// replaceFile is writeFileAtomic with the data written by write.
func replaceFile(path string, mode fs.FileMode, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	// removeStaleTemps knows this name: change both together.
	f, err := os.CreateTemp(dir, configTempPrefix(filepath.Base(path))+"*.tmp")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := write(f); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	// Make the rename itself durable; not every filesystem supports syncing a directory.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// removeStaleTemps removes what writeFileAtomic leaves next to the config file when the
// agent is killed between creating its temporary file and renaming it: regular files
// named like its temporary files (".config.toml.<digits>.tmp") in the directory the file
// (or the file a symlink at path points to) is written in, and owned by this user.
// Nothing else is touched, and failures are ignored: the files only take space.
func removeStaleTemps(path string) {
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	}
	dir, base := filepath.Dir(target), filepath.Base(target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range entries {
		if !isConfigTemp(base, ent.Name()) || !ent.Type().IsRegular() {
			continue
		}
		if fi, err := ent.Info(); err == nil && ownedByMe(fi) {
			os.Remove(filepath.Join(dir, ent.Name()))
		}
	}
}

// isConfigTemp reports whether name is a temporary file writeFileAtomic makes for the
// config file base: os.CreateTemp puts decimal digits where its pattern has "*".
func isConfigTemp(base, name string) bool {
	mid, ok := strings.CutPrefix(name, configTempPrefix(base))
	if !ok {
		return false
	}
	mid, ok = strings.CutSuffix(mid, ".tmp")
	if !ok || mid == "" {
		return false
	}
	for _, c := range mid {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func configTempPrefix(base string) string { return "." + base + "." }
