package tray

import "sync"

// menuBackend is what the renderer needs of a tray menu: entries that can be added, changed,
// hidden and shown, but not moved. systrayMenu is the real one.
type menuBackend interface {
	add(parent menuEntry, title, tooltip string) menuEntry // parent nil: the top level
	addSeparator(parent menuEntry)
	reset() // remove every entry
}

// menuEntry is one entry of a menuBackend.
type menuEntry interface {
	SetTitle(string)
	SetTooltip(string)
	Enable()
	Disable()
	Show()
	Hide()
	clicks() <-chan struct{} // closed when the entry is removed
}

// renderer shows Menus on a menuBackend. Entries keep their place once added, so it keeps
// slots: each shows an item or hides, and a menu that no longer fits (a separator moved, a
// profile more than the spare slots) makes it start over. Slots outlive most changes, so
// an entry keeps its id while its profile changes state.
type renderer struct {
	b     menuBackend
	click func(action string) // called for a click on an enabled item; must not block

	mu    sync.Mutex
	slots []*slot
}

// Spare slots added with a rebuild, hidden until needed.
const (
	sparePlain    = 2 // first in the menu: room for lines such as "No agent is running"
	spareSubmenus = 2 // after a run of submenus: room for profiles to come
	spareChildren = 2 // in each submenu
)

type slot struct {
	sep      bool
	entry    menuEntry // nil for a separator
	children []*slot   // non-empty: the slot is a submenu
	shown    Item      // the title, tooltip, action and enabled it shows
	visible  bool
}

func newRenderer(b menuBackend, click func(action string)) *renderer {
	return &renderer{b: b, click: click}
}

// render shows items.
func (r *renderer) render(items []Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := match(r.slots, items)
	if !ok {
		r.b.reset()
		r.slots = r.build(nil, items)
		at, _ = match(r.slots, items)
	}
	r.fill(r.slots, items, at)
}

// match places items on slots in order: at[i] is the item slot i shows, or -1 when it
// hides. It fails when an item finds no slot of its kind, or a separator would be left
// over (separators cannot hide).
func match(slots []*slot, items []Item) (at []int, ok bool) {
	at = make([]int, len(slots))
	j := 0
	for i, it := range items {
		for ; j < len(slots) && !slots[j].fits(it); j++ {
			if slots[j].sep {
				return nil, false
			}
			at[j] = -1
		}
		if j == len(slots) {
			return nil, false
		}
		at[j] = i
		j++
	}
	for ; j < len(slots); j++ {
		if slots[j].sep {
			return nil, false
		}
		at[j] = -1
	}
	return at, true
}

func (s *slot) fits(it Item) bool {
	switch {
	case s.sep || it.Separator:
		return s.sep && it.Separator
	case len(it.Children) == 0:
		return len(s.children) == 0
	}
	_, ok := match(s.children, it.Children)
	return len(s.children) > 0 && ok
}

// build adds slots for items under parent, with spares.
func (r *renderer) build(parent menuEntry, items []Item) []*slot {
	var slots []*slot
	if parent == nil {
		for range sparePlain {
			s := r.add(nil, Item{}, 0)
			r.hide(s)
			slots = append(slots, s)
		}
	}
	for i, it := range items {
		slots = append(slots, r.add(parent, it, len(it.Children)))
		endOfRun := len(it.Children) > 0 && (i+1 == len(items) || len(items[i+1].Children) == 0)
		if parent == nil && endOfRun {
			for range spareSubmenus {
				s := r.add(nil, Item{}, len(it.Children))
				r.hide(s)
				slots = append(slots, s)
			}
		}
	}
	return slots
}

// add adds a slot for it; a submenu gets room for children children and spares.
func (r *renderer) add(parent menuEntry, it Item, children int) *slot {
	if it.Separator {
		r.b.addSeparator(parent)
		return &slot{sep: true, visible: true}
	}
	s := &slot{entry: r.b.add(parent, it.Title, it.Tooltip), visible: true}
	s.shown = Item{Title: it.Title, Tooltip: it.Tooltip, Enabled: true}
	if children > 0 {
		s.children = r.build(s.entry, it.Children)
		for range children - len(it.Children) + spareChildren {
			c := r.add(s.entry, Item{}, 0)
			r.hide(c)
			s.children = append(s.children, c)
		}
	}
	go r.listen(s)
	return s
}

// listen passes on the clicks on s for as long as it exists.
func (r *renderer) listen(s *slot) {
	for range s.entry.clicks() {
		r.mu.Lock()
		action, live := s.shown.Action, s.visible && s.shown.Enabled
		r.mu.Unlock()
		if live && action != "" {
			r.click(action)
		}
	}
}

// fill makes each slot show its item, or hide.
func (r *renderer) fill(slots []*slot, items []Item, at []int) {
	for j, s := range slots {
		if at[j] < 0 {
			r.hide(s)
			continue
		}
		it := items[at[j]]
		if s.sep {
			continue
		}
		if len(s.children) > 0 {
			cat, _ := match(s.children, it.Children)
			r.fill(s.children, it.Children, cat)
		}
		r.show(s, it)
	}
}

func (r *renderer) show(s *slot, it Item) {
	if s.shown.Title != it.Title {
		s.entry.SetTitle(it.Title)
	}
	if s.shown.Tooltip != it.Tooltip {
		s.entry.SetTooltip(it.Tooltip)
	}
	if s.shown.Enabled != it.Enabled {
		if it.Enabled {
			s.entry.Enable()
		} else {
			s.entry.Disable()
		}
	}
	s.shown = Item{Title: it.Title, Tooltip: it.Tooltip, Action: it.Action, Enabled: it.Enabled}
	if !s.visible {
		s.entry.Show()
		s.visible = true
	}
}

func (r *renderer) hide(s *slot) {
	if s.visible && !s.sep {
		s.entry.Hide()
		s.visible = false
	}
}
