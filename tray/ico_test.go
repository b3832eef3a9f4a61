package tray

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/png"
	"testing"
)

func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// icoFromPNG makes the .ico Windows' LoadImage reads: ICONDIR (reserved 0, type 1, one
// image), one ICONDIRENTRY (size, 0 meaning 256; 1 plane; 32 bits; the PNG's length and
// offset 22), then the PNG unchanged.
func TestIcoFromPNG(t *testing.T) {
	for _, side := range []int{16, 22, 48, 256} {
		data := pngOf(t, side, side)
		ico, err := icoFromPNG(data)
		if err != nil {
			t.Fatalf("%dx%d: %v", side, side, err)
		}
		var hdr struct {
			Reserved, Type, Count            uint16
			Width, Height, Colors, Reserved2 uint8
			Planes, BitCount                 uint16
			Size, Offset                     uint32
		}
		if err := binary.Read(bytes.NewReader(ico), binary.LittleEndian, &hdr); err != nil {
			t.Fatal(err)
		}
		wantSide := uint8(side % 256)
		if hdr.Reserved != 0 || hdr.Type != 1 || hdr.Count != 1 || hdr.Width != wantSide || hdr.Height != wantSide ||
			hdr.Planes != 1 || hdr.BitCount != 32 || hdr.Size != uint32(len(data)) || hdr.Offset != 22 {
			t.Errorf("%dx%d: header %+v", side, side, hdr)
		}
		if !bytes.Equal(ico[22:], data) {
			t.Errorf("%dx%d: the PNG after the header is not the one given", side, side)
		}
	}
	if _, err := icoFromPNG(pngOf(t, 257, 16)); err == nil {
		t.Error("a 257-pixel-wide PNG: no error; .ico cannot say that width")
	}
	if _, err := icoFromPNG([]byte("GIF89a")); err == nil {
		t.Error("not a PNG: no error")
	}
}
