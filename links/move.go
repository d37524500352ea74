package links

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// MoveLink moves the link called name from the namespace from into to,
// where it is called newName, and leaves it down (a move sets it down, and
// so does a rename). netns.None() stands for the caller's namespace on
// either side. A link already called newName in to fails the move with an
// error wrapping os.ErrExist before anything changes; any later failure is
// undone, so the link ends where it was, under its name.
//
// The kernel keeps a link's name across a move and refuses one whose name
// is taken on the other side, so the rename happens on whichever side
// leaves no clash: after the move when to lacks name (a ZeroTier device
// going into a member's netns), before it otherwise (a member's eth0
// coming back to a node that has an eth0 of its own). Addresses do not
// survive a move: the kernel flushes them.
func MoveLink(from netns.NsHandle, name string, to netns.NsHandle, newName string) error {
	if err := ValidIfname(newName); err != nil {
		return fmt.Errorf("move link %s: %w", name, err)
	}
	src, err := handleAt(from)
	if err != nil {
		return fmt.Errorf("move link %s: source netns: %w", name, err)
	}
	defer src.Close()
	dst, err := handleAt(to)
	if err != nil {
		return fmt.Errorf("move link %s: target netns: %w", name, err)
	}
	defer dst.Close()
	toFD, closeTo, err := nsFD(to)
	if err != nil {
		return fmt.Errorf("move link %s: %w", name, err)
	}
	defer closeTo()
	fromFD, closeFrom, err := nsFD(from)
	if err != nil {
		return fmt.Errorf("move link %s: %w", name, err)
	}
	defer closeFrom()
	m := linkMove{src: src, dst: dst, toFD: toFD, fromFD: fromFD, name: name, newName: newName}
	if err := m.run(); err != nil {
		return fmt.Errorf("move link %s to %s in another netns: %w", name, newName, err)
	}
	return nil
}

// linkMove is one MoveLink: both sides' netlink handles and namespace fds.
type linkMove struct {
	src, dst      *netlink.Handle
	toFD, fromFD  int
	name, newName string
}

func (m linkMove) run() error {
	l, err := m.src.LinkByName(m.name)
	if err != nil {
		return err
	}
	if _, err := m.dst.LinkByName(m.newName); err == nil {
		return fmt.Errorf("the target netns already has a link called %s: %w", m.newName, unix.EEXIST)
	}
	if m.name == m.newName {
		return m.src.LinkSetNsFd(l, m.toFD)
	}
	if _, err := m.dst.LinkByName(m.name); err != nil {
		return m.moveThenRename(l)
	}
	if _, err := m.src.LinkByName(m.newName); err != nil {
		return m.renameThenMove(l)
	}
	return fmt.Errorf("both netns hold a link called %s or %s: %w", m.name, m.newName, unix.EEXIST)
}

func (m linkMove) moveThenRename(l netlink.Link) error {
	if err := m.src.LinkSetNsFd(l, m.toFD); err != nil {
		return err
	}
	moved, err := m.dst.LinkByName(m.name)
	if err == nil {
		err = m.dst.LinkSetName(moved, m.newName)
	}
	if err != nil {
		if moved != nil {
			if uerr := m.dst.LinkSetNsFd(moved, m.fromFD); uerr != nil {
				err = errors.Join(err, fmt.Errorf("undo: move back: %w", uerr))
			}
		}
		return fmt.Errorf("rename after the move: %w", err)
	}
	return nil
}

func (m linkMove) renameThenMove(l netlink.Link) error {
	if err := m.src.LinkSetDown(l); err != nil {
		return err
	}
	if err := m.src.LinkSetName(l, m.newName); err != nil {
		return fmt.Errorf("rename before the move: %w", err)
	}
	if err := m.src.LinkSetNsFd(l, m.toFD); err != nil {
		if uerr := m.src.LinkSetName(l, m.name); uerr != nil {
			err = errors.Join(err, fmt.Errorf("undo: rename back: %w", uerr))
		}
		return err
	}
	return nil
}

// nsFD is ns's file descriptor, or one of the caller's own namespace for
// netns.None(); the returned func closes what nsFD opened.
func nsFD(ns netns.NsHandle) (int, func(), error) {
	if ns.IsOpen() {
		return int(ns), func() {}, nil
	}
	self, err := netns.Get()
	if err != nil {
		return -1, nil, fmt.Errorf("open this netns: %w", err)
	}
	return int(self), func() { self.Close() }, nil
}
