<#
.SYNOPSIS
  One command from this checkout to Claude Code talking to your own Serena and quality MCP servers (Windows).

.DESCRIPTION
  The PowerShell twin of start-devops-paradise.sh, with the same steps, flags and messages:
  checks prerequisites, installs the project into .venv, prepares the runtime (Docker images, or Serena on
  this machine), starts the bridge in the background, registers the client, writes WORKSPACE\.mcp.json
  and proves the path with a real MCP initialize + tools/list. Safe to run again.

  On native Windows the bridge runs instances in Docker (Docker Desktop); the process runtime needs POSIX
  process groups and is used only by PowerShell 7 on Linux or macOS (or use WSL2 with the bash script).

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File scripts\start-devops-paradise.ps1 alice C:\src\myproject quick
.EXAMPLE
  scripts\start-devops-paradise.ps1 -Status
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)] [string] $ClientName = "",
    [Parameter(Position = 1)] [string] $Workspace = "",
    [Parameter(Position = 2)] [string] $QualityProfile = "comprehensive",
    [switch] $Status,
    [switch] $Stop,
    [switch] $Remove,
    [ValidateSet("", "auto", "docker", "process")] [string] $Runtime = "",
    [int] $Port = 0,
    [switch] $ShowToken,
    [switch] $Yes
)

# Native commands report through exit codes; "Stop" would turn their stderr lines into exceptions (PS 5.1).
$ErrorActionPreference = "Continue"
Set-StrictMode -Version 2.0
$Prog = "start-devops-paradise"
$RepoDir = (Resolve-Path (Join-Path $PSScriptRoot "..")).Path
$OnWindows = ($PSVersionTable.PSVersion.Major -lt 6) -or $IsWindows
$Steps = 9
$script:StepNo = 0
$script:Log = $null
$script:CreatedVenv = $false
$script:CreatedClient = $false
$script:StartingProcess = $null
$script:Out = ""
$script:Last = ""
$script:Python = $null
$script:Doctor = $null
$script:RunningRuntime = $null
$script:ChosenRuntime = $null

# ---- output ----------------------------------------------------------------------------------------

function Write-Log([string] $Text) { if ($script:Log) { Add-Content -Path $script:Log -Value $Text } }
function Step([string] $Title) {
    $script:StepNo++
    Write-Host ""; Write-Host ("==> [{0}/{1}] {2}" -f $script:StepNo, $Steps, $Title)
    Write-Log "== $Title"
}
function Info([string] $Text) { Write-Host "    $Text" }
function Warn([string] $Text) { Write-Host "    warning: $Text"; Write-Log "warning: $Text" }

# Every failure ends here: undo what this run half-made, then one sentence and the log's path.
function Fail([string] $Sentence) {
    Undo-HalfMade
    Write-Log "FAILED: $Sentence"
    [Console]::Error.WriteLine("")
    [Console]::Error.WriteLine("${Prog}: error: $Sentence")
    if ($script:Log -and (Test-Path $script:Log)) { [Console]::Error.WriteLine("${Prog}: log: $($script:Log)") }
    exit 1
}

# Runs the devops-paradise command of the venv; output to the log, kept in $script:Out / $script:Last.
function Invoke-Dp([string[]] $Arguments, [switch] $Show) {
    Write-Log ("$ devops-paradise " + ($Arguments -join " "))
    $output = & $script:VenvPy -m bridge @Arguments 2>&1 | ForEach-Object {
        $line = "$_"
        Write-Log $line
        if ($Show) { Write-Host "    $line" }
        $line
    }
    $script:Out = ($output -join "`n")
    $lines = @($output | Where-Object { "$_".Trim() -ne "" })
    $script:Last = if ($lines.Count -gt 0) { ("" + $lines[-1]) -replace "^devops-paradise: ", "" } else { "" }
    return $LASTEXITCODE
}

function Confirm-Step([string] $Question, [bool] $DefaultYes) {
    if ($Yes) { return $true }
    if ([Console]::IsInputRedirected) { return $DefaultYes }
    $hint = if ($DefaultYes) { "Y/n" } else { "y/N" }
    $answer = Read-Host "    $Question [$hint]"
    if ($answer -match "^[yY]") { return $true }
    if ($answer -match "^[nN]") { return $false }
    return $DefaultYes
}

# ---- arguments and places --------------------------------------------------------------------------

function Get-DefaultClient {
    $user = if ($env:USERNAME) { $env:USERNAME } else { [Environment]::UserName }
    $hostName = ([Environment]::MachineName -split "\.")[0]
    $name = ("$user-$hostName").ToLowerInvariant() -replace "[^a-z0-9-]", "-" -replace "-+", "-" -replace "^-+", ""
    if ($name.Length -gt 40) { $name = $name.Substring(0, 40) }
    if (-not $name) { $name = "paradise-user" }
    return $name
}

if (-not $ClientName) { $ClientName = Get-DefaultClient }
if ($ClientName -cnotmatch "^[a-z0-9][a-z0-9-]{0,39}$") {
    [Console]::Error.WriteLine("${Prog}: client name '$ClientName' is not valid: use 1-40 lower-case letters, digits and '-', starting with a letter or digit (see Get-Help)")
    exit 2
}
if (-not $Workspace) { $Workspace = (Get-Location).Path }
# relative to where the script was called from (it changes into the checkout below)
$Workspace = [IO.Path]::GetFullPath([IO.Path]::Combine((Get-Location).Path, $Workspace))
if ($env:PARADISE_VENV) { $env:PARADISE_VENV = [IO.Path]::GetFullPath([IO.Path]::Combine((Get-Location).Path, $env:PARADISE_VENV)) }

$DataDir = if ($env:PARADISE_DATA_DIR) { $env:PARADISE_DATA_DIR } else { Join-Path $HOME ".devops-paradise" }
if ($Port -eq 0) { $Port = if ($env:PARADISE_PORT) { [int] $env:PARADISE_PORT } else { 8100 } }
$BridgeUrl = "http://127.0.0.1:$Port"
$PidFile = Join-Path $DataDir "bridge.pid"
$BridgeLog = Join-Path $DataDir "bridge.log"
$SetupLog = Join-Path $DataDir "setup.log"
$RuntimeFile = Join-Path $DataDir "runtime"
$TokenFile = Join-Path (Join-Path $DataDir "tokens") $ClientName
$SetupTimeout = if ($env:PARADISE_SETUP_TIMEOUT) { $env:PARADISE_SETUP_TIMEOUT } else { "600" }
$BridgeWait = if ($env:PARADISE_BRIDGE_WAIT) { [int] $env:PARADISE_BRIDGE_WAIT } else { 60 }

try { New-Item -ItemType Directory -Force -Path $DataDir -ErrorAction Stop | Out-Null } catch {
    [Console]::Error.WriteLine("${Prog}: error: the data directory $DataDir cannot be created or written; set PARADISE_DATA_DIR to a writable place.")
    exit 1
}
$DataDir = (Resolve-Path $DataDir).Path
$env:PARADISE_DATA_DIR = $DataDir
$env:PARADISE_PORT = "$Port"
$env:PARADISE_URL = $BridgeUrl
$env:NO_PROXY = "127.0.0.1,localhost" + $(if ($env:NO_PROXY) { ",$($env:NO_PROXY)" } else { "" })
$script:Log = $SetupLog
Write-Log ""; Write-Log ("---- {0} {1} client={2}" -f (Get-Date -Format "yyyy-MM-dd HH:mm:ss"), $Prog, $ClientName)
Set-Location $RepoDir

$UsingGivenVenv = [bool] $env:PARADISE_VENV
$Venv = if ($UsingGivenVenv) { $env:PARADISE_VENV } else { Join-Path $RepoDir ".venv" }
$script:VenvPy = if ($OnWindows) { Join-Path $Venv "Scripts\python.exe" } else { Join-Path $Venv "bin/python" }
if ($UsingGivenVenv) { $env:PYTHONPATH = $RepoDir + $(if ($env:PYTHONPATH) { [IO.Path]::PathSeparator + $env:PYTHONPATH } else { "" }) }

function Undo-HalfMade {
    if ($script:CreatedClient) {
        Write-Log "rollback: deleting client $ClientName and its token file"
        & $script:VenvPy -m bridge client rm $ClientName 2>&1 | ForEach-Object { Write-Log "$_" }
        Remove-Item -Force -ErrorAction SilentlyContinue $TokenFile
        $script:CreatedClient = $false
    }
    if ($script:StartingProcess) {
        Write-Log "rollback: stopping the bridge that did not come up"
        Stop-Process -Id $script:StartingProcess.Id -Force -ErrorAction SilentlyContinue
        Remove-Item -Force -ErrorAction SilentlyContinue $PidFile
        $script:StartingProcess = $null
    }
    if ($script:CreatedVenv) {
        Write-Log "rollback: removing the unfinished $Venv"
        Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $Venv
        $script:CreatedVenv = $false
    }
}

# ---- helpers -----------------------------------------------------------------------------------------

function Get-PyVersion([string] $Python) {
    try { return (& $Python -c "import sys; print('%d.%d.%d' % sys.version_info[:3])" 2>$null) } catch { return "" }
}
function Test-PyNewEnough([string] $Python) {
    try { & $Python -c "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)" 2>$null; return $LASTEXITCODE -eq 0 } catch { return $false }
}
function Test-VenvReady {
    try { & $script:VenvPy -c "import bridge.cli.common, aiohttp, httpx2, mcp, psutil, pydantic_settings, sqlmodel" 2>$null; return $LASTEXITCODE -eq 0 } catch { return $false }
}
function Get-BridgeRuntime {
    try {
        $health = Invoke-RestMethod -Uri "$BridgeUrl/healthz" -TimeoutSec 2 -ErrorAction Stop
        if ($health.status -eq "ok") { return "$($health.runtime)" }
    } catch { }
    return $null
}
function Test-PortTaken {  # true when the bridge could not bind the port
    $listener = New-Object System.Net.Sockets.TcpListener ([System.Net.IPAddress]::Loopback), $Port
    try { $listener.Start(); return $false } catch { return $true } finally { $listener.Stop() }
}
function Get-BridgePid {
    if (-not (Test-Path $PidFile)) { return $null }
    $id = (Get-Content $PidFile -ErrorAction SilentlyContinue | Select-Object -First 1)
    if ($id -and (Get-Process -Id ([int] $id) -ErrorAction SilentlyContinue)) { return [int] $id }
    return $null
}

# ---- steps -----------------------------------------------------------------------------------------

function Find-Python {
    if ($env:PYTHON) {
        if (-not (Get-Command $env:PYTHON -ErrorAction SilentlyContinue)) {
            Fail "the Python interpreter '$($env:PYTHON)' (from PYTHON) was not found; point PYTHON at Python 3.11 or newer, or unset it."
        }
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
        if (-not $python) {
            Fail "python3 was not found; install Python 3.11 or newer (Windows: winget install Python.Python.3.12, or python.org) or set PYTHON to one."
        }
    }
    if (-not (Test-PyNewEnough $python)) {
        Fail "Python 3.11 or newer is needed, but $python is Python $(Get-PyVersion $python); install a newer one or set PYTHON to it."
    }
    & $python -c "import venv, ensurepip" 2>$null
    if ($LASTEXITCODE -ne 0) {
        Fail "$python has no working venv module; install it (Debian/Ubuntu: sudo apt-get install python3-venv) or set PYTHON to another Python 3.11+."
    }
    Info "python    $(Get-PyVersion $python) ($python)"
    return $python
}

function Test-Prerequisites {
    Step "Checking prerequisites"
    $script:Python = $null
    if ($UsingGivenVenv -and -not (Test-Path $script:VenvPy)) {
        Fail "PARADISE_VENV=$Venv is not a virtual environment (no bin/python); point it at one or unset it."
    }
    if (Test-Path $script:VenvPy) {
        if (-not (Test-PyNewEnough $script:VenvPy)) {
            Fail "$Venv uses Python $(Get-PyVersion $script:VenvPy) but 3.11 or newer is needed; remove it (rm -rf $Venv) and run again."
        }
        Info "python    $(Get-PyVersion $script:VenvPy) (virtualenv $Venv)"
    } else {
        $script:Python = Find-Python
    }
    if (-not (Test-Path -PathType Container $Workspace)) {
        Fail "the workspace '$Workspace' is not a directory; pass an existing project directory as the second argument."
    }
    $script:Workspace = (Resolve-Path $Workspace).Path
    Info "workspace $script:Workspace"
    Info "client    $ClientName (quality profile $QualityProfile)"
    Info "data dir  $DataDir"
}

function Initialize-Venv {
    Step "Python environment"
    $marker = Join-Path $Venv ".paradise-installed"
    if ($UsingGivenVenv) {
        if (-not (Test-VenvReady)) {
            Fail "PARADISE_VENV=$Venv lacks this project's dependencies; install them there (pip install -e '.[quality]') or unset PARADISE_VENV."
        }
        Info "using $Venv (PARADISE_VENV; nothing installed into it, code from $RepoDir)"
        return
    }
    if (-not (Test-Path $script:VenvPy)) {
        Info "creating $Venv"
        $script:CreatedVenv = $true
        & $script:Python -m venv $Venv 2>&1 | ForEach-Object { Write-Log "$_" }
        if ($LASTEXITCODE -ne 0) { Fail "creating the virtual environment $Venv failed: see the log" }
    }
    $fresh = (Test-Path $marker) -and ((Get-Item $marker).LastWriteTime -ge (Get-Item (Join-Path $RepoDir "pyproject.toml")).LastWriteTime)
    if ((Test-VenvReady) -and $fresh) { Info "up to date ($Venv)"; return }
    Info "installing the project into $Venv (pip install -e '.[quality]'; the first time takes a minute or two)"
    & $script:VenvPy -m pip install --disable-pip-version-check --progress-bar off -e "$RepoDir[quality]" 2>&1 | ForEach-Object {
        Write-Log "$_"
        if ("$_" -match "^(Collecting|Successfully installed|ERROR)") { Write-Host "    $_" }
    }
    if ($LASTEXITCODE -ne 0) { Fail "installing the project into $Venv failed (pip could not finish; see the log for its last lines)." }
    if (-not (Test-VenvReady)) { Fail "the project was installed into $Venv but cannot be imported; remove $Venv and run again." }
    Set-Content -Path $marker -Value "ok"
    $script:CreatedVenv = $false
}

function Test-Profile {
    $known = (& $script:VenvPy -c "from instances.quality.profiles import load_profiles; print(' '.join(sorted(load_profiles())))" 2>$null)
    if (-not ((" $known ").Contains(" $QualityProfile "))) {
        Fail "unknown quality profile '$QualityProfile'; choose one of: $known."
    }
}

function Select-Runtime {
    Step "Choosing the runtime"
    $script:RunningRuntime = Get-BridgeRuntime
    $wanted = $Runtime
    if (-not $wanted -and (Test-Path $RuntimeFile)) { $wanted = (Get-Content $RuntimeFile | Select-Object -First 1) }
    if (-not $wanted) { $wanted = if ($env:PARADISE_RUNTIME) { $env:PARADISE_RUNTIME } else { "auto" } }
    if ($script:RunningRuntime) {
        $script:ChosenRuntime = $script:RunningRuntime
        Info "the bridge already runs at $BridgeUrl with the $($script:ChosenRuntime) runtime"
        return
    }
    Invoke-Dp @("--json", "doctor") | Out-Null
    $script:Doctor = $script:Out | ConvertFrom-Json
    $engine = [bool] $script:Doctor.docker.engine
    if ($wanted -eq "process") {
        $script:ChosenRuntime = "process"; Info "process runtime (asked for)"
    } elseif ($wanted -eq "docker") {
        if (-not $engine) { Fail "the docker runtime was asked for but no Docker engine answers; start Docker (Docker Desktop, or scripts/ensure-docker.sh on Linux) or use -Runtime process." }
        $script:ChosenRuntime = "docker"; Info "docker runtime (asked for)"
    } elseif ($engine) {
        $script:ChosenRuntime = "docker"; Info "docker runtime: a Docker engine answers (use -Runtime process for local processes)"
    } else {
        $script:ChosenRuntime = "process"; Info "process runtime: no Docker engine answers"
    }
    if ($script:ChosenRuntime -eq "process" -and $OnWindows) {
        Fail "the process runtime does not run on native Windows; start Docker Desktop and run again, or use WSL2 with ./start-devops-paradise.sh."
    }
}

function Initialize-Runtime {
    Step "Preparing the $($script:ChosenRuntime) runtime"
    if ($script:ChosenRuntime -eq "docker") {
        if (-not $script:Doctor) { Invoke-Dp @("--json", "doctor") | Out-Null; $script:Doctor = $script:Out | ConvertFrom-Json }
        $missing = @($script:Doctor.docker.images.PSObject.Properties | Where-Object { -not $_.Value } | ForEach-Object { $_.Name })
        if ($missing.Count -eq 0) { Info "images present"; return }
        Info ("images to build: " + ($missing -join " "))
        if (-not (Confirm-Step "Build the Docker images now (a few minutes the first time)?" $true)) {
            Fail "the docker runtime needs its images; build them with 'devops-paradise images build' or use -Runtime process."
        }
        if ((Invoke-Dp @("images", "build") -Show) -ne 0) {
            Fail "building the Docker images failed; see the log, or run with -Runtime process to use local processes instead."
        }
        return
    }
    if (Get-Command node -ErrorAction SilentlyContinue) { Info "node      $(node --version) (runs Serena's pyright language server)" }
    else { Warn "node was not found; Serena's pyright will use the Node.js wheel from PyPI (install Node.js 18+ to use your own)" }
    $serenaVenv = if ($env:PARADISE_SERENA_VENV) { $env:PARADISE_SERENA_VENV } else { Join-Path $DataDir "serena-venv" }
    & $script:VenvPy -c "import sys; from bridge.host.serena_install import serena_installed; sys.exit(0 if serena_installed(sys.argv[1]) else 1)" $serenaVenv 2>$null
    if ($LASTEXITCODE -eq 0) { Info "Serena installed ($serenaVenv)"; return }
    if (-not (Confirm-Step "Install Serena into $serenaVenv now (downloads about 100 MB once)?" $true)) {
        Fail "the process runtime needs Serena; install it with 'devops-paradise doctor --install serena' or use -Runtime docker."
    }
    if ((Invoke-Dp @("doctor", "--install", "serena") -Show) -ne 0) {
        Fail "installing Serena failed; see the log (pip and pyright output), then run this script again."
    }
}

function Start-Bridge {
    Step "Starting the bridge"
    if ($script:RunningRuntime) {
        Info "already running at $BridgeUrl (log $BridgeLog)"
        if ((Invoke-Dp @("client", "list")) -ne 0) {
            Fail "a bridge answers on port $Port but does not accept the admin token of $DataDir ($($script:Last)); stop it or choose another port with -Port."
        }
        return
    }
    $old = Get-BridgePid
    if ($old) { Fail "the bridge of $DataDir (pid $old) runs but does not answer on $BridgeUrl (another -Port?); stop it with -Stop and run again." }
    if (Test-PortTaken) { Fail "port $Port is in use by another program; choose another port with -Port." }
    $script:Log = $BridgeLog
    $env:PARADISE_RUNTIME = $script:ChosenRuntime
    $options = @{ FilePath = $script:VenvPy; ArgumentList = @("-m", "bridge", "serve"); WorkingDirectory = $RepoDir
                  RedirectStandardOutput = $BridgeLog; RedirectStandardError = "$BridgeLog.err"; PassThru = $true }
    if ($OnWindows) { $options["WindowStyle"] = "Hidden" }
    $script:StartingProcess = Start-Process @options -ErrorAction Stop
    Set-Content -Path $PidFile -Value $script:StartingProcess.Id
    Info "pid $($script:StartingProcess.Id), log $BridgeLog; waiting for $BridgeUrl/healthz"
    $deadline = (Get-Date).AddSeconds($BridgeWait)
    while (-not (Get-BridgeRuntime)) {
        if ($script:StartingProcess.HasExited) {
            $last = (Get-Content "$BridgeLog.err", $BridgeLog -ErrorAction SilentlyContinue | Where-Object { $_.Trim() } | Select-Object -Last 1)
            if ("$last" -match "address already in use|only one usage of each socket address") {
                Fail "port $Port is in use by another program; choose another port with -Port."
            }
            Fail "the bridge stopped during start-up: $last"
        }
        if ((Get-Date) -gt $deadline) { Fail "the bridge did not answer on $BridgeUrl within ${BridgeWait}s." }
        Start-Sleep -Milliseconds 250
    }
    $script:StartingProcess = $null
    $script:Log = $SetupLog
    Set-Content -Path $RuntimeFile -Value $script:ChosenRuntime
    Info "the bridge answers ($($script:ChosenRuntime) runtime)"
}

function Register-Client {
    Step "Registering client $ClientName"
    $code = Invoke-Dp @("--json", "client", "show", $ClientName)
    if ($code -eq 4) {
        Remove-Item -Force -ErrorAction SilentlyContinue $TokenFile
        if ((Invoke-Dp @("client", "add", $ClientName, "--workspace", $script:Workspace, "--profile", $QualityProfile, "--wait", "0", "--token-file", $TokenFile)) -ne 0) {
            Fail "registering client $ClientName failed: $($script:Last)"
        }
        $script:CreatedClient = $true
        Info "registered; token stored in $TokenFile"
        return
    }
    if ($code -ne 0) { Fail "asking the bridge about client $ClientName failed: $($script:Last)" }
    $client = $script:Out | ConvertFrom-Json
    if ($client.workspace -ne $script:Workspace) {
        Fail "client $ClientName is already registered for the workspace $($client.workspace); use another client name or remove it first with -Remove $ClientName."
    }
    Info "already registered (reusing it)"
    if ($client.profile -ne $QualityProfile) { Warn "client $ClientName keeps its quality profile '$($client.profile)'; to change it, -Remove it and run again" }
    if (@($client.instances | Where-Object { $_.state -eq "failed" }).Count -gt 0) {
        Info "an instance had failed: restarting the client's instances"
        if ((Invoke-Dp @("client", "restart", $ClientName)) -ne 0) { Fail "restarting the instances of $ClientName failed: $($script:Last)" }
    }
    if ((Test-Path $TokenFile) -and (Get-Item $TokenFile).Length -gt 0) { Info "reusing the token in $TokenFile"; return }
    if ((Invoke-Dp @("client", "token", $ClientName, "--token-file", $TokenFile)) -ne 0) {
        Fail "issuing a new token for $ClientName failed: $($script:Last)"
    }
    Info "no stored token for ${ClientName}: issued a new one into $TokenFile (older copies stop working)"
}

function Wait-Ready {
    Step "Waiting for the instances of $ClientName"
    if ((Invoke-Dp @("client", "wait", $ClientName, "--timeout", $SetupTimeout) -Show) -ne 0) {
        Fail "the instances of $ClientName did not become ready: $($script:Last)"
    }
    $script:CreatedClient = $false
}

function Write-Config {
    Step "Writing the Claude Code configuration"
    if ((Invoke-Dp @("mcp-config", $ClientName, "--write", $script:Workspace)) -ne 0) {
        Fail "could not write $($script:Workspace)/.mcp.json: $($script:Last)"
    }
    ($script:Out -split "`n") | Where-Object { $_ -match "^wrote|already up to date" } | ForEach-Object { Info $_ }
}

function Test-Path-End-To-End {
    Step "Proving the path: MCP initialize + tools/list through the bridge"
    $mcpJson = Join-Path $script:Workspace ".mcp.json"
    if ((Invoke-Dp @("check", $ClientName, "--mcp-json", $mcpJson, "--token-file", $TokenFile, "--timeout", "120") -Show) -eq 0) { return }
    if ($script:Last -match "refused the token") {
        Fail "the bridge refused the token in $TokenFile; delete that file and run this script again to get a new one."
    }
    Fail "the MCP check through the bridge failed: $($script:Last)"
}

function Write-Summary {
    Invoke-Dp @("mcp-config", $ClientName) | Out-Null
    $lines = ($script:Out -split "`n") | Where-Object { $_ -like "claude mcp add*" }
    $export = if ($ShowToken) { "`$env:DEVOPS_PARADISE_TOKEN = '$((Get-Content $TokenFile -Raw).Trim())'" }
              else { "`$env:DEVOPS_PARADISE_TOKEN = (Get-Content '$TokenFile' -Raw).Trim()" }
    Write-Host ""
    Write-Host "DevOps Paradise is ready for $ClientName ($($script:ChosenRuntime) runtime)."
    Write-Host ""
    Write-Host "  workspace    $($script:Workspace)   (.mcp.json: paradise-serena, paradise-quality)"
    Write-Host "  bridge       $BridgeUrl   (pid $(Get-BridgePid), log $BridgeLog)"
    Write-Host "  token file   $TokenFile   (in your profile; never commit it)"
    Write-Host "  setup log    $SetupLog"
    Write-Host ""
    Write-Host "Before starting Claude Code in the workspace, put the token in its environment:"
    Write-Host ""
    Write-Host "  $export"
    Write-Host ""
    Write-Host "Or register the servers with Claude Code by hand (same token variable):"
    Write-Host ""
    $lines | ForEach-Object { Write-Host "  $_" }
}

# ---- the other actions -----------------------------------------------------------------------------

function Show-Status {
    if (-not (Test-Path $script:VenvPy)) { Write-Host "not set up yet: no virtualenv at $Venv"; exit 1 }
    $running = Get-BridgeRuntime
    if (-not $running) { Write-Host "bridge: not running at $BridgeUrl (data dir $DataDir)"; exit 1 }
    Write-Host "bridge: running at $BridgeUrl (pid $(Get-BridgePid), runtime $running, log $BridgeLog)"
    Write-Host ""
    if ((Invoke-Dp @("client", "show", $ClientName)) -ne 0) { Write-Host "client ${ClientName}: $($script:Last)"; exit 1 }
    Write-Host $script:Out
    if (Test-Path $TokenFile) { Write-Host "`ntoken file $TokenFile" } else { Write-Host "`nno token file ($TokenFile)" }
    exit 0
}

function Stop-All {
    if (-not (Test-Path $script:VenvPy)) { Write-Host "nothing to stop: no virtualenv at $Venv"; exit 0 }
    Write-Host "stopping the bridge and its instances (clients stay registered)"
    if ((Invoke-Dp @("stop") -Show) -ne 0) { Fail "stopping failed: $($script:Last)" }
    exit 0
}

function Remove-Client {
    if (-not (Test-Path $script:VenvPy)) { Fail "nothing to remove: there is no virtualenv at $Venv yet." }
    if (-not (Get-BridgeRuntime)) {
        Fail "the bridge is not running at $BridgeUrl; start it with $PSCommandPath (or the same command without -Remove), then remove the client."
    }
    if (-not $Yes -and [Console]::IsInputRedirected) {
        Fail "-Remove deletes client $ClientName; add -Yes to confirm when there is no terminal."
    }
    if (-not (Confirm-Step "Delete client $ClientName, its instances and its token?" $false)) { Write-Host "nothing removed"; exit 0 }
    if ((Invoke-Dp @("client", "rm", $ClientName)) -ne 0) { Fail "removing client $ClientName failed: $($script:Last)" }
    Remove-Item -Force -ErrorAction SilentlyContinue $TokenFile
    Write-Host $script:Last
    Write-Host "token file $TokenFile deleted; the bridge keeps running (stop it with -Stop)."
    exit 0
}

if ($Status) { Show-Status }
if ($Stop) { Stop-All }
if ($Remove) { Remove-Client }

$script:Done = $false
try {
    Write-Host "DevOps Paradise setup: client $ClientName, workspace $Workspace"
    Test-Prerequisites
    Initialize-Venv
    Test-Profile
    Select-Runtime
    Initialize-Runtime
    Start-Bridge
    Register-Client
    Wait-Ready
    Write-Config
    Test-Path-End-To-End
    Write-Summary
    $script:Done = $true
} catch {
    Fail "unexpected error: $($_.Exception.Message)"
} finally {
    if (-not $script:Done) { Undo-HalfMade }  # Ctrl-C ends the script here: nothing half-made stays
}
