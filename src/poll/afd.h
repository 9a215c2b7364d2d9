/* What mingw-w64's headers lack for polling sockets through the Ancillary
 * Function Driver (afd.sys), the kernel side of Winsock.  Private to
 * src/poll/backend_iocp.c.
 *
 * None of this is in the public SDK; the values are the driver's own and
 * have not changed since Windows NT 4.  Where each comes from:
 *
 *  - IOCTL_AFD_POLL: the driver's control code for AFD_POLL (function 9),
 *    built as (FILE_DEVICE_NETWORK << 12) | (9 << 2) | METHOD_BUFFERED =
 *    0x00012024.  The layout is the DDK's CTL_CODE without an access field,
 *    as in ReactOS sdk/include/reactos/drivers/afd/shared.h (_AFD_CONTROL_CODE)
 *    and wepoll's src/afd.h; Wine's include/wine/afd.h has the same value.
 *  - AFD_POLL_* event bits (bit 0 receive ... bit 8 connect-fail): ReactOS
 *    shared.h, wepoll src/afd.h, and the Windows Server 2003 afd.sys source
 *    (net/sockets/winsock2/wsp/afdsys/poll.c, AfdCheckPollEvents).
 *  - AFD_POLL_HANDLE_INFO and AFD_POLL_INFO: the layout afd.sys reads for
 *    the ioctl's buffer (ReactOS shared.h; wepoll src/afd.h): a timeout,
 *    a handle count, an exclusive flag, then {handle, events, status} per
 *    handle.
 *  - SIO_BASE_HANDLE = _WSAIOR(IOC_WS2, 34) = 0x48000022: Microsoft's
 *    mswsock.h (documented in "Winsock IOCTLs"); recent mingw-w64 has it.
 *  - NtCancelIoFileEx: exported by ntdll.dll since Vista; prototype from the
 *    Windows DDK's ntifs.h.  mingw-w64's winternl.h declares NtCreateFile
 *    and NtDeviceIoControlFile but not this one.
 *  - STATUS_SUCCESS 0, STATUS_CANCELLED 0xC0000120, STATUS_NOT_FOUND
 *    0xC0000225: the DDK's ntstatus.h (not included: with windows.h it
 *    redefines other codes).  winnt.h has STATUS_PENDING (0x103). */
#ifndef NIO_POLL_AFD_H
#define NIO_POLL_AFD_H

#include <winsock2.h>
#include <mswsock.h>
#include <windows.h>
#include <winternl.h>

#ifndef SIO_BASE_HANDLE
#define SIO_BASE_HANDLE 0x48000022
#endif

#define IOCTL_AFD_POLL 0x00012024

#define AFD_POLL_RECEIVE 0x0001u           /* data to read */
#define AFD_POLL_RECEIVE_EXPEDITED 0x0002u /* out-of-band data */
#define AFD_POLL_SEND 0x0004u              /* room to write; a connect done */
#define AFD_POLL_DISCONNECT 0x0008u        /* the peer's FIN */
#define AFD_POLL_ABORT 0x0010u             /* reset, or the connection lost */
#define AFD_POLL_LOCAL_CLOSE 0x0020u       /* this process closed the socket */
#define AFD_POLL_ACCEPT 0x0080u            /* a connection to accept */
#define AFD_POLL_CONNECT_FAIL 0x0100u      /* a nonblocking connect failed */

typedef struct AFD_POLL_HANDLE_INFO {
    HANDLE Handle;
    ULONG Events;
    NTSTATUS Status;
} AFD_POLL_HANDLE_INFO;

typedef struct AFD_POLL_INFO {
    LARGE_INTEGER Timeout;
    ULONG NumberOfHandles;
    ULONG Exclusive;
    AFD_POLL_HANDLE_INFO Handles[1];
} AFD_POLL_INFO;

#ifndef STATUS_SUCCESS
#define STATUS_SUCCESS ((NTSTATUS)0x00000000L)
#endif
#ifndef STATUS_CANCELLED
#define STATUS_CANCELLED ((NTSTATUS)0xC0000120L)
#endif
#ifndef STATUS_NOT_FOUND
#define STATUS_NOT_FOUND ((NTSTATUS)0xC0000225L)
#endif

NTSTATUS NTAPI NtCancelIoFileEx(HANDLE FileHandle, PIO_STATUS_BLOCK IoRequestToCancel,
                                PIO_STATUS_BLOCK IoStatusBlock);

#endif
