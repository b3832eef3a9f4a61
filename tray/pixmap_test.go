package tray

import (
	"bytes"
	"image"
	"image/png"
	"testing"

	"github.com/authagent/authagent/assets"
)

// argbLikeSystray is fyne systray's conversion of an icon to a StatusNotifierItem pixmap
// (argbForImage in systray_unix.go), copied to check what it makes of ours.
func argbLikeSystray(img image.Image) []byte {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	data := make([]byte, w*h*4)
	i := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, b, a := img.At(x, y).RGBA()
			data[i] = byte(a)
			data[i+1] = byte(r)
			data[i+2] = byte(g)
			data[i+3] = byte(b)
			i += 4
		}
	}
	return data
}

func TestSystrayIconPixmapIsExact(t *testing.T) {
	for _, s := range []assets.Status{assets.StatusOK, assets.StatusLogin, assets.StatusNoAgent} {
		pngData := assets.Icon(s, assets.LightPanel, 22)
		src, err := png.Decode(bytes.NewReader(pngData))
		if err != nil {
			t.Fatal(err)
		}
		nrgba := src.(*image.NRGBA)
		var want []byte
		for i := 0; i < len(nrgba.Pix); i += 4 {
			want = append(want, nrgba.Pix[i+3], nrgba.Pix[i], nrgba.Pix[i+1], nrgba.Pix[i+2])
		}

		data, err := systrayIcon(pngData)
		if err != nil {
			t.Fatal(err)
		}
		img, format, err := image.Decode(bytes.NewReader(data)) // as systray does
		if err != nil {
			t.Fatalf("%s: image.Decode: %v", s, err)
		}
		if format != "authagent-pixmap" || img.Bounds().Dx() != 22 || img.Bounds().Dy() != 22 {
			t.Errorf("%s: decoded as %s, %v", s, format, img.Bounds())
		}
		if !bytes.Equal(argbLikeSystray(img), want) {
			t.Errorf("%s: the pixmap systray makes differs from the PNG's pixels", s)
		}
		// Straight from the PNG, semi-transparent pixels come out wrong: the reason for all this.
		if bytes.Equal(argbLikeSystray(src), want) {
			t.Logf("%s: systray converts PNGs right now; pixmap.go may go", s)
		}
	}
}

func TestPixmapRejectsGarbage(t *testing.T) {
	registerPixmap()
	if _, _, err := image.Decode(bytes.NewReader([]byte(pixmapMagic + "\x00\x02\x00\x02abc"))); err == nil {
		t.Error("a short pixmap decoded")
	}
	if _, err := systrayIcon([]byte("not a png")); err == nil {
		t.Error("systrayIcon accepted garbage")
	}
}
