//go:build ignore

// Command gen_icons draws the tray icons into icons/: a key in the panel's foreground
// colour with a status dot, for each status, for light and dark panels, at the sizes tray
// protocols ask for. Run it with `go generate ./assets`; the PNGs are committed.
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"
)

var sizes = []int{16, 22, 24, 32, 48}

// Foreground colours: a dark key on light panels, a light one on dark panels.
var panels = map[string]color.NRGBA{
	"light": {0x2e, 0x34, 0x36, 0xff},
	"dark":  {0xee, 0xee, 0xec, 0xff},
}

type status struct {
	dot    color.NRGBA
	symbol func(x, y, stroke float64) bool // drawn in white inside the dot
	faded  bool                            // the key at half strength: nothing answers
}

// The dot sits at the bottom right.
const (
	dotX, dotY = 0.73, 0.73
	dotR       = 0.25
	dotGap     = 0.07 // cleared around the dot so it stands apart from the key
)

var statuses = map[string]status{
	"ok": {dot: color.NRGBA{0x2e, 0xa0, 0x43, 0xff}, symbol: func(x, y, s float64) bool {
		return capsule(x, y, 0.62, 0.74, 0.70, 0.82, s) || capsule(x, y, 0.70, 0.82, 0.84, 0.65, s)
	}},
	"refreshing": {dot: color.NRGBA{0x1f, 0x6f, 0xeb, 0xff}, symbol: func(x, y, s float64) bool {
		// An open ring: something is under way.
		d := math.Hypot(x-dotX, y-dotY)
		a := math.Atan2(y-dotY, x-dotX)
		return math.Abs(d-0.12) < s && !(a > -math.Pi/2 && a < 0)
	}},
	"login": {dot: color.NRGBA{0xd9, 0x8a, 0x00, 0xff}, symbol: func(x, y, s float64) bool {
		return capsule(x, y, dotX, 0.63, dotX, 0.75, s) || math.Hypot(x-dotX, y-0.83) < s*1.1
	}},
	"error": {dot: color.NRGBA{0xda, 0x36, 0x33, 0xff}, symbol: func(x, y, s float64) bool {
		const d = 0.085
		return capsule(x, y, dotX-d, dotY-d, dotX+d, dotY+d, s) || capsule(x, y, dotX-d, dotY+d, dotX+d, dotY-d, s)
	}},
	"noagent": {dot: color.NRGBA{0x8b, 0x94, 0x9e, 0xff}, faded: true, symbol: func(x, y, s float64) bool {
		return capsule(x, y, dotX-0.1, dotY, dotX+0.1, dotY, s)
	}},
}

// key is the glyph: a ring (the bow), a shaft and two teeth.
func key(x, y float64) bool {
	bow := math.Hypot(x-0.28, y-0.36)
	switch {
	case bow < 0.235 && bow > 0.095:
	case x > 0.46 && x < 0.95 && y > 0.305 && y < 0.415: // shaft
	case x > 0.70 && x < 0.78 && y > 0.17 && y <= 0.305: // teeth, up: the dot is below
	case x > 0.86 && x < 0.95 && y > 0.20 && y <= 0.305:
	default:
		return false
	}
	return math.Hypot(x-dotX, y-dotY) > dotR+dotGap
}

// capsule reports whether (x, y) is within r of the segment from (ax, ay) to (bx, by).
func capsule(x, y, ax, ay, bx, by, r float64) bool {
	dx, dy := bx-ax, by-ay
	t := ((x-ax)*dx + (y-ay)*dy) / (dx*dx + dy*dy)
	t = math.Max(0, math.Min(1, t))
	return math.Hypot(x-(ax+t*dx), y-(ay+t*dy)) < r
}

// mask samples inside on an 8×8 grid per pixel: the anti-aliased coverage of a shape.
func mask(size int, strength float64, inside func(x, y float64) bool) *image.Alpha {
	const n = 8
	m := image.NewAlpha(image.Rect(0, 0, size, size))
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			hits := 0
			for sy := 0; sy < n; sy++ {
				for sx := 0; sx < n; sx++ {
					x := (float64(px) + (float64(sx)+0.5)/n) / float64(size)
					y := (float64(py) + (float64(sy)+0.5)/n) / float64(size)
					if inside(x, y) {
						hits++
					}
				}
			}
			m.SetAlpha(px, py, color.Alpha{uint8(math.Round(255 * strength * float64(hits) / (n * n)))})
		}
	}
	return m
}

func draw1(size int, fg color.NRGBA, st status) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	over := func(c color.Color, m *image.Alpha) {
		draw.DrawMask(img, img.Bounds(), image.NewUniform(c), image.Point{}, m, image.Point{}, draw.Over)
	}
	strength := 1.0
	if st.faded {
		strength = 0.55
	}
	// Strokes no thinner than about 1.4 px, or they vanish at 16 px.
	stroke := math.Max(0.035, 0.7/float64(size))
	over(fg, mask(size, strength, key))
	over(st.dot, mask(size, 1, func(x, y float64) bool { return math.Hypot(x-dotX, y-dotY) < dotR }))
	over(color.White, mask(size, 1, func(x, y float64) bool { return st.symbol(x, y, stroke) }))
	return img
}

func main() {
	out := flag.String("out", "icons", "directory to write the PNGs to")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	for name, st := range statuses {
		for panel, fg := range panels {
			for _, size := range sizes {
				f, err := os.Create(filepath.Join(*out, fmt.Sprintf("%s-%s-%d.png", name, panel, size)))
				if err != nil {
					log.Fatal(err)
				}
				enc := png.Encoder{CompressionLevel: png.BestCompression}
				if err := enc.Encode(f, draw1(size, fg, st)); err != nil {
					log.Fatal(err)
				}
				if err := f.Close(); err != nil {
					log.Fatal(err)
				}
			}
		}
	}
}
