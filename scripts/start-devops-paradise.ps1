<#
.SYNOPSIS
  One command from this checkout to Claude Code talking to your own Serena and quality MCP servers (Windows).

.DESCRIPTION
  The PowerShell twin of start-devops-paradise.sh: it only prepares Python (a Python 3.11 or newer, the
  project's .venv, the project installed into it), then runs `devops-paradise setup` with the same arguments,
  which does every step (--help lists the options; -Status -Stop -Remove -Runtime R -Port N -ShowToken -Yes
  work too). On native Windows instances run in Docker (Docker Desktop); the process runtime needs POSIX.
.EXAMPLE
  powershell -ExecutionPolicy Bypass -File scripts\start-devops-paradise.ps1 alice C:\src\myproject quick
#>

# Native commands report through exit codes; "Stop" would turn their stderr lines into exceptions (PS 5.1).
$ErrorActionPreference = "Continue"
Set-StrictMode -Version 2.0
$Prog = "start-devops-paradise"
$RepoDir = (Resolve-Path (Join-Path $PSScriptRoot "..")).Path
$OnWindows = ($PSVersionTable.PSVersion.Major -lt 6) -or $IsWindows
$DataDir = if ($env:PARADISE_DATA_DIR) { $env:PARADISE_DATA_DIR } else { Join-Path $HOME ".devops-paradise" }
$Log = Join-Path $DataDir "setup.log"
$script:CreatedVenv = $false

# -Status, -Runtime docker, ... mean the same as --status, --runtime docker (the names of the earlier script).
$Switches = @{ status = "--status"; stop = "--stop"; remove = "--remove"; yes = "--yes"; showtoken = "--show-token"
               runtime = "--runtime"; port = "--port"; help = "--help" }
$Forward = @()
foreach ($arg in $args) {
    $text = "$arg"
    if ($text -match "^-([A-Za-z]+)$" -and $Switches.ContainsKey($Matches[1].ToLowerInvariant())) {
        $Forward += $Switches[$Matches[1].ToLowerInvariant()]
    } elseif ($text -notmatch "^-(ClientName|Workspace|QualityProfile)$") {  # their values are the positionals
        $Forward += $text
    }
}
$Action = "setup"
foreach ($word in $Forward) { if ($word -in @("--status", "--stop", "--remove")) { $Action = $word.Substring(2) } }
$WantsHelp = [bool] ($Forward | Where-Object { $_ -in @("--help", "-h") })

function Remove-UnfinishedVenv {
    if ($script:CreatedVenv) { Write-Log "rollback: removing the unfinished $Venv"; Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $Venv }
    $script:CreatedVenv = $false
}
function Write-Log([string] $Text) { if (Test-Path $DataDir) { Add-Content -Path $Log -Value $Text } }
function Info([string] $Text) { Write-Host "    $Text" }

# One sentence and the log's path, after removing a virtualenv this run created but could not finish.
function Fail([string] $Sentence) {
    Remove-UnfinishedVenv
    Write-Log "FAILED: $Sentence"
    [Console]::Error.WriteLine("")
    [Console]::Error.WriteLine("${Prog}: error: $Sentence")
    if (Test-Path $Log) { [Console]::Error.WriteLine("${Prog}: log: $Log") }
    exit 1
}

function Get-PyVersion([string] $Python) { try { return (& $Python -c "import sys; print('%d.%d.%d' % sys.version_info[:3])" 2>$null) } catch { return "" } }
function Test-PyNewEnough([string] $Python) {
    try { & $Python -c "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)" 2>$null; return $LASTEXITCODE -eq 0 } catch { return $false }
}
# The packages setup imports; all declared in pyproject.toml.
function Test-VenvReady {
    if (-not (Test-Path $VenvPy)) { return $false }
    try { & $VenvPy -c "import bridge.cli.setup.main, aiohttp, httptools, httpx, mcp, psutil, pydantic_settings, sqlmodel" 2>$null; return $LASTEXITCODE -eq 0 } catch { return $false }
}

function Find-Python {
    if ($env:PYTHON) {
        if (-not (Get-Command $env:PYTHON -ErrorAction SilentlyContinue)) { Fail "the Python interpreter '$($env:PYTHON)' (from PYTHON) was not found; point PYTHON at Python 3.11 or newer, or unset it." }
        $python = $env:PYTHON
    } else {
        $python = $null
        foreach ($candidate in @("py -3.13", "py -3.12", "py -3.11", "python3", "python")) {
            $parts = $candidate -split " "
            if (-not (Get-Command $parts[0] -ErrorAction SilentlyContinue)) { continue }
            if ($parts.Count -gt 1) {
                $exe = & $parts[0] $parts[1] -c "import sys; print(sys.executable)" 2>$null
                if ($LASTEXITCODE -eq 0 -and $exe -and (Test-PyNewEnough "$exe".Trim())) { $python = "$exe".Trim(); break }
            } elseif (Test-PyNewEnough $parts[0]) { $python = $parts[0]; break }
        }
        if (-not $python) { Fail "python3 was not found; install Python 3.11 or newer (Windows: winget install Python.Python.3.12, or python.org) or set PYTHON to one." }
    }
    if (-not (Test-PyNewEnough $python)) { Fail "Python 3.11 or newer is needed, but $python is Python $(Get-PyVersion $python); install a newer one or set PYTHON to it." }
    & $python -c "import venv, ensurepip" 2>$null
    if ($LASTEXITCODE -ne 0) { Fail "$python has no working venv module; install it (Debian/Ubuntu: sudo apt-get install python3-venv) or set PYTHON to another Python 3.11+." }
    Info "python    $(Get-PyVersion $python) ($python)"
    return $python
}

$UsingGivenVenv = [bool] $env:PARADISE_VENV
if ($UsingGivenVenv) {
    $env:PARADISE_VENV = [IO.Path]::GetFullPath([IO.Path]::Combine((Get-Location).Path, $env:PARADISE_VENV))
    $env:PYTHONPATH = $RepoDir + $(if ($env:PYTHONPATH) { [IO.Path]::PathSeparator + $env:PYTHONPATH } else { "" })
}
$Venv = if ($UsingGivenVenv) { $env:PARADISE_VENV } else { Join-Path $RepoDir ".venv" }
$VenvPy = if ($OnWindows) { Join-Path $Venv "Scripts\python.exe" } else { Join-Path $Venv "bin/python" }

# Nothing set up yet: help and the small actions answer without creating anything.
if (-not $UsingGivenVenv -and -not (Test-VenvReady)) {
    if ($WantsHelp) {
        Write-Host "Usage: $PSCommandPath [options] [CLIENT_NAME] [WORKSPACE] [QUALITY_PROFILE]"
        Write-Host "Options: --status --stop --remove --runtime auto|docker|process --port N --show-token --yes --help"
        Write-Host "The full help (devops-paradise setup --help) comes once $Venv is set up: run without --help."
        exit 0
    }
    if (-not (Test-Path $VenvPy)) {
        if ($Action -eq "status") { Write-Host "not set up yet: no virtualenv at $Venv (run $PSCommandPath first)"; exit 1 }
        if ($Action -eq "stop") { Write-Host "nothing to stop: no virtualenv at $Venv"; exit 0 }
        if ($Action -eq "remove") { [Console]::Error.WriteLine("${Prog}: error: nothing to remove: there is no virtualenv at $Venv yet."); exit 1 }
    }
}
if ($Action -eq "setup" -and -not $WantsHelp) {
    try { New-Item -ItemType Directory -Force -Path $DataDir -ErrorAction Stop | Out-Null } catch { }
    Write-Log ""; Write-Log ("---- {0} {1} python environment" -f (Get-Date -Format "yyyy-MM-dd HH:mm:ss"), $Prog)
}

try {
    if ($UsingGivenVenv) {
        if (-not (Test-Path $VenvPy)) { Fail "PARADISE_VENV=$Venv is not a virtual environment (no bin/python); point it at one or unset it." }
        if (-not (Test-VenvReady)) { Fail "PARADISE_VENV=$Venv lacks this project's dependencies; install them there (pip install -e '.[quality]') or unset PARADISE_VENV." }
    } else {
        if ((Test-Path $VenvPy) -and -not (Test-PyNewEnough $VenvPy)) { Fail "$Venv uses Python $(Get-PyVersion $VenvPy) but 3.11 or newer is needed; remove it (rm -rf $Venv) and run again." }
        $marker = Join-Path $Venv ".paradise-installed"
        $fresh = (Test-Path $marker) -and ((Get-Item $marker).LastWriteTime -ge (Get-Item (Join-Path $RepoDir "pyproject.toml")).LastWriteTime)
        if (-not ((Test-VenvReady) -and $fresh)) {
            Write-Host "Preparing Python for DevOps Paradise ($Venv)"
            if (-not (Test-Path $VenvPy)) {
                $python = Find-Python
                Info "creating $Venv"
                $script:CreatedVenv = $true
                & $python -m venv $Venv 2>&1 | ForEach-Object { Write-Log "$_" }
                if ($LASTEXITCODE -ne 0) { Fail "creating the virtual environment $Venv failed; see the log." }
            }
            Info "installing the project into $Venv (pip install -e '.[quality]'; the first time takes a minute or two)"
            & $VenvPy -m pip install --disable-pip-version-check --progress-bar off -e "$RepoDir[quality]" 2>&1 | ForEach-Object {
                Write-Log "$_"
                if ("$_" -match "^(Collecting|Successfully installed|ERROR)") { Info "$_" }
            }
            if ($LASTEXITCODE -ne 0) { Fail "installing the project into $Venv failed (pip could not finish; see the log for its last lines)." }
            if (-not (Test-VenvReady)) { Fail "the project was installed into $Venv but cannot be imported; remove $Venv and run again." }
            Set-Content -Path $marker -Value "ok"
            $script:CreatedVenv = $false
        }
    }
} finally { Remove-UnfinishedVenv }  # Ctrl-C lands here too: nothing half-made stays

$env:DEVOPS_PARADISE_SETUP_COMMAND = $PSCommandPath
& $VenvPy -m bridge setup @Forward
exit $LASTEXITCODE
