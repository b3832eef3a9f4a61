package tray

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"sync"
)

// fyne systray turns the icon into the ARGB pixmap of a StatusNotifierItem with byte() of
// the 16-bit, alpha-premultiplied channels that image.Color.RGBA returns: every
// semi-transparent pixel comes out as noise (coloured fringes on anti-aliased edges). It
// reads the icon with image.Decode, so the tray hands it a format of its own whose
// colours answer RGBA with each straight 8-bit channel repeated in both bytes: the pixmap
// then holds exactly the PNG's pixels, unpremultiplied, as the protocol wants.

// pixmapMagic starts an icon in that format: then width and height (uint16, big endian)
// and the pixels as straight RGBA, 4 bytes each, row by row.
const pixmapMagic = "\x00authagent-pixmap\x00"

var registerPixmap = sync.OnceFunc(func() {
	image.RegisterFormat("authagent-pixmap", pixmapMagic, decodePixmap, decodePixmapConfig)
})

// systrayIcon converts a PNG to the format systray reads right.
func systrayIcon(pngData []byte) ([]byte, error) {
	registerPixmap()
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	nrgba := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(nrgba, nrgba.Bounds(), img, b.Min, draw.Src)
	var out bytes.Buffer
	out.WriteString(pixmapMagic)
	binary.Write(&out, binary.BigEndian, [2]uint16{uint16(b.Dx()), uint16(b.Dy())})
	out.Write(nrgba.Pix)
	return out.Bytes(), nil
}

func readPixmapHeader(r io.Reader) (w, h int, err error) {
	var hdr struct {
		Magic [len(pixmapMagic)]byte
		W, H  uint16
	}
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return 0, 0, err
	}
	if string(hdr.Magic[:]) != pixmapMagic {
		return 0, 0, errors.New("not an authagent pixmap")
	}
	return int(hdr.W), int(hdr.H), nil
}

func decodePixmapConfig(r io.Reader) (image.Config, error) {
	w, h, err := readPixmapHeader(r)
	return image.Config{ColorModel: color.NRGBAModel, Width: w, Height: h}, err
}

func decodePixmap(r io.Reader) (image.Image, error) {
	br := bufio.NewReader(r)
	w, h, err := readPixmapHeader(br)
	if err != nil {
		return nil, err
	}
	p := straightImage{w: w, h: h, pix: make([]byte, 4*w*h)}
	if _, err := io.ReadFull(br, p.pix); err != nil {
		return nil, err
	}
	return p, nil
}

// straightImage holds straight (unpremultiplied) RGBA pixels; see straightColor.
type straightImage struct {
	w, h int
	pix  []byte
}

func (p straightImage) ColorModel() color.Model { return color.NRGBAModel }
func (p straightImage) Bounds() image.Rectangle { return image.Rect(0, 0, p.w, p.h) }
func (p straightImage) At(x, y int) color.Color {
	if !image.Pt(x, y).In(p.Bounds()) {
		return straightColor{}
	}
	i := 4 * (y*p.w + x)
	return straightColor{p.pix[i], p.pix[i+1], p.pix[i+2], p.pix[i+3]}
}

// straightColor breaks image/color's rule on purpose: RGBA returns the straight channels,
// each 8-bit value in both bytes, because systray keeps the low byte of each.
type straightColor struct{ r, g, b, a uint8 }

func (c straightColor) RGBA() (r, g, b, a uint32) {
	return uint32(c.r) * 0x101, uint32(c.g) * 0x101, uint32(c.b) * 0x101, uint32(c.a) * 0x101
}
