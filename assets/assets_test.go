package assets

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

var (
	allStatuses = []Status{StatusOK, StatusRefreshing, StatusLogin, StatusError, StatusNoAgent}
	allPanels   = []Panel{LightPanel, DarkPanel}
)

func TestIconsDecode(t *testing.T) {
	for _, s := range allStatuses {
		for _, p := range allPanels {
			for _, size := range Sizes() {
				b := Icon(s, p, size)
				if b == nil {
					t.Errorf("Icon(%s, %s, %d) = nil", s, p, size)
					continue
				}
				img, err := png.Decode(bytes.NewReader(b))
				if err != nil {
					t.Errorf("Icon(%s, %s, %d): %v", s, p, size, err)
					continue
				}
				if got := img.Bounds().Size(); got != image.Pt(size, size) {
					t.Errorf("Icon(%s, %s, %d) is %v", s, p, size, got)
				}
				if opaque := coverage(img); opaque < 0.15 || opaque > 0.7 {
					t.Errorf("Icon(%s, %s, %d) covers %.0f%% of its square; want a glyph, not a blank or a block", s, p, size, 100*opaque)
				}
			}
		}
	}
}

// coverage is the share of the image's area that is painted.
func coverage(img image.Image) float64 {
	var sum float64
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			_, _, _, a := img.At(x, y).RGBA()
			sum += float64(a) / 0xffff
		}
	}
	return sum / float64(b.Dx()*b.Dy())
}

func TestIconSizeChoice(t *testing.T) {
	for _, tc := range []struct{ ask, want int }{{1, 16}, {16, 16}, {17, 22}, {22, 22}, {23, 24}, {30, 32}, {48, 48}, {256, 48}} {
		img, err := png.Decode(bytes.NewReader(Icon(StatusOK, DarkPanel, tc.ask)))
		if err != nil {
			t.Fatal(err)
		}
		if got := img.Bounds().Dx(); got != tc.want {
			t.Errorf("Icon(ok, dark, %d) is %d px, want %d", tc.ask, got, tc.want)
		}
	}
	if b := Icon("nonsense", DarkPanel, 16); b != nil {
		t.Errorf("Icon of an unknown status = %d bytes, want nil", len(b))
	}
	if b := Icon(StatusOK, "beige", 16); b != nil {
		t.Errorf("Icon for an unknown panel = %d bytes, want nil", len(b))
	}
}

// The panels' icons differ where they must: the key is dark on light panels and light
// on dark ones.
func TestIconsFitTheirPanel(t *testing.T) {
	for _, s := range allStatuses {
		light := luminance(t, Icon(s, LightPanel, 48))
		dark := luminance(t, Icon(s, DarkPanel, 48))
		if light >= 0.5 || dark <= 0.5 || dark-light < 0.2 {
			t.Errorf("%s: mean luminance of the painted pixels: %.2f on light panels, %.2f on dark ones", s, light, dark)
		}
	}
}

// luminance is the alpha-weighted mean luminance (0 black … 1 white) of a PNG.
func luminance(t *testing.T, b []byte) float64 {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var sum, weight float64
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			if a == 0 {
				continue
			}
			// RGBA is alpha-premultiplied: divide it out.
			l := (0.2126*float64(r) + 0.7152*float64(g) + 0.0722*float64(bl)) / float64(a)
			sum += l * float64(a)
			weight += float64(a)
		}
	}
	return sum / weight
}

// The committed PNGs are what gen_icons.go draws: nobody edited one by hand or forgot to
// run go generate after changing the drawing.
func TestIconsAreGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := t.TempDir()
	cmd := exec.Command(goTool, "run", "gen_icons.go", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run gen_icons.go: %v\n%s", err, b)
	}
	generated, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := icons.ReadDir("icons")
	if err != nil {
		t.Fatal(err)
	}
	if len(generated) != len(committed) {
		t.Errorf("the generator draws %d icons, %d are committed", len(generated), len(committed))
	}
	for _, f := range generated {
		want, err := os.ReadFile(filepath.Join(out, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := icons.ReadFile("icons/" + f.Name())
		if err != nil {
			t.Errorf("%s is drawn but not committed; run go generate ./assets", f.Name())
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("icons/%s differs from what gen_icons.go draws; run go generate ./assets", f.Name())
		}
	}
}
