//! The command line: raw flags as clap parses them (`Opts`, already typed), and the checked request the program
//! runs on (`Request`). Resolving is one small function per concern (source, sink, model, input preparation,
//! window), called once, before the model loads.
use crate::report::Format;
use crate::shard::{self, Shard};
use clap::{ArgGroup, Parser, Subcommand};
use classify_image::annotate::Style;
use classify_image::models::{self, Precision, Preset, PresetKind};
use classify_image::{error::Error, sink, weights::hub::Fetch, LabelSource, ModelId};
use std::path::{Path, PathBuf};
use tch::Device;

/// Classify images with an ImageNet-pretrained CNN: print the top 5 classes and draw the top-1 label on the
/// image.
///
/// With one image and no --output (nor --format other than text), the annotated image opens in a window, as in
/// the original script, until a key is pressed; without a display the predictions are printed and the run ends
/// with an error that names --output. With --output FILE or --output-dir DIR no window opens unless --show.
#[derive(Debug, Parser)]
#[command(
    name = "classify-image",
    version,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true,
    group(ArgGroup::new("source").required(true).multiple(true).args(["paths", "image", "video", "camera"]))
)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Images to classify; a folder means every image file under it, recursively; - reads one image from stdin
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Images to classify, as the original script takes them (same as the positional PATHs)
    #[arg(short, long, value_name = "PATH", num_args = 1..)]
    image: Vec<PathBuf>,

    /// Classify the frames of a video file instead
    #[arg(long, value_name = "FILE", conflicts_with_all = ["paths", "image", "camera"])]
    video: Option<PathBuf>,

    /// Classify the frames of a camera (its index, 0 for the first) instead
    #[arg(long, value_name = "INDEX", conflicts_with_all = ["paths", "image", "video"])]
    camera: Option<i32>,

    /// With --video/--camera: classify every Nth frame (the label stays on the frames between)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    every: u32,

    #[command(flatten)]
    model: ModelOpts,

    /// Write the annotated image (or video: .mp4, .avi) to FILE, format from its extension, instead of showing
    /// a window; missing folders are created
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Write annotated copies of the images into DIR, under their own names; missing folders are created
    #[arg(long, value_name = "DIR", conflicts_with = "output")]
    output_dir: Option<PathBuf>,

    /// Also show the annotated images (or video) in a window, e.g. beside --output; q or Esc stops
    #[arg(long)]
    show: bool,

    /// Lay the Grad-CAM heatmap of the top-1 class (where the network looked) over the annotated image, as
    /// pytorch-grad-cam draws it
    #[arg(long)]
    explain: bool,

    /// The heatmap of this class instead of the top-1: its index (0-based), one of its label's names, e.g.
    /// tabby or "tiger cat", or its WordNet id with the built-in labels (implies --explain)
    #[arg(long, value_name = "CLASS")]
    explain_class: Option<String>,

    /// How the label is drawn: seed (the original's red text), box (on a band sized to the image) or bars (the
    /// top K on the band)
    #[arg(long, value_enum, value_name = "STYLE", default_value_t = Style::Seed)]
    caption: Style,

    /// How many predictions to report per image
    #[arg(short = 'k', long, value_name = "K", default_value_t = 5, value_parser = parse_top_k, allow_negative_numbers = true)]
    top_k: usize,

    /// Output format on stdout
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Images per forward pass when classifying several
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch_size: u32,

    /// Classify only shard K of N of the images (K from 1 to N), to split one run over N machines; auto takes K
    /// from a Kubernetes Indexed Job or a Slurm job array
    ///
    /// Each image's shard is picked by a hash of its name — its path relative to the folder given, or the path as
    /// given for a file named directly — so the shards are disjoint, together they hold every image, and adding
    /// images does not move the others. auto reads a Kubernetes Indexed Job's JOB_COMPLETION_INDEX (give auto/N,
    /// N the Job's completions: Kubernetes does not say it) or a Slurm job array's SLURM_ARRAY_TASK_ID (from
    /// SLURM_ARRAY_TASK_MIN, N from SLURM_ARRAY_TASK_COUNT).
    #[arg(long, value_name = "K/N|auto[/N]")]
    shard: Option<String>,

    /// Append each image's record to FILE as soon as it is done, and skip the images FILE already records: a
    /// stopped run goes on where it stopped
    ///
    /// The record is the line --format jsonl prints; images are matched by their path as given. A failed image's
    /// record counts as done: delete its line to try it again. A last line cut off by a kill is removed and its
    /// image classified again. Missing folders are created. Images and folders only, one file per shard; stdout
    /// still gets this run's report.
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,

    /// Class names, one per line [default: the built-in ImageNet labels]
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,

    /// Where to run: auto (CUDA if available, else CPU), cpu, cuda or cuda:N
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    device: Device,

    #[command(flatten)]
    pub network: NetworkOpts,

    /// Print only the results and errors: no [INFO] lines, progress bars, summaries or download messages
    #[arg(short, long)]
    quiet: bool,
}

/// What classifies and how images are prepared for it; shared by classifying and `eval`.
#[derive(Debug, clap::Args)]
pub struct ModelOpts {
    /// The pre-trained network: the original's vgg16, vgg19, inception, densenet, resnet, or any model of the
    /// zoo (`classify-image weights list`), by torchvision's name with its default weights (`resnet50`), or with
    /// a weights tag (`resnet50.IMAGENET1K_V1`, or torchvision's `ResNet50_Weights.IMAGENET1K_V1`)
    #[arg(short, long, value_name = "MODEL", default_value = DEFAULT_MODEL, value_parser = parse_model)]
    model: ModelArg,

    /// Weights file (.pth, .pt or .safetensors) to use instead of the official one, e.g. a fine-tuned state
    /// dict with its own number of classes (give its --labels)
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,

    /// Classify with a TorchScript module (torch.jit.trace/script output) instead of a zoo model; it gets the
    /// original's input preparation unless --size/--mean/--std say otherwise
    #[arg(long, value_name = "FILE", conflicts_with_all = ["weights", "model"])]
    torchscript: Option<PathBuf>,

    /// How to prepare the image: seed (the original's squash to the model's size) or torchvision (the weights'
    /// own eval transform: shorter side to 256, centre crop 224 for most; `weights list --transforms` shows
    /// each one's size and filter)
    #[arg(long, value_enum, default_value_t = PresetKind::Seed)]
    preset: PresetKind,

    /// Input size: the image is squashed (or, with --preset torchvision, cropped) to SIZE×SIZE
    /// [default: the model's, 224 for most]
    #[arg(long, value_name = "SIZE", value_parser = clap::value_parser!(i64).range(16..=4096))]
    size: Option<i64>,

    /// Per-channel mean subtracted after scaling to [0, 1] [default: the model's, ImageNet's for most]
    #[arg(long, value_name = "R,G,B", value_parser = parse_mean)]
    mean: Option<[f64; 3]>,

    /// Per-channel standard deviation divided by [default: the model's]
    #[arg(long, value_name = "R,G,B", value_parser = parse_std)]
    std: Option<[f64; 3]>,

    /// The arithmetic: fp32 (the same numbers as PyTorch), bf16 (any CPU, fast with AVX512_BF16 or AMX; CUDA),
    /// fp16 (CUDA), int8 (CPU; VGG, AlexNet, ResNet, ResNeXt, Wide ResNet, RegNet X, MobileNet V2, MNASNet and
    /// EfficientNet-Lite)
    ///
    /// int8 quantizes the weights per channel and the activations with ranges calibrated on 100 built-in
    /// photos the first time, cached beside the weights file; `classify-image quantize` calibrates on your own.
    /// `classify-image devices` says which precisions this CPU runs natively.
    #[arg(long, value_enum, value_name = "PRECISION", default_value_t = Precision::Fp32)]
    precision: Precision,

    /// The same as --precision fp16
    #[arg(long, conflicts_with = "precision")]
    half: bool,

    /// With --precision int8: the activation ranges that `classify-image quantize` wrote, instead of the
    /// built-in calibration
    #[arg(long, value_name = "FILE")]
    calibration: Option<PathBuf>,
}

/// The precision a run computes in, and the int8 calibration file it was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Arithmetic {
    pub precision: Precision,
    pub calibration: Option<PathBuf>,
}

impl ModelOpts {
    /// The model to load, its name as given (the original prints it), the preparation of its input, and the
    /// precision, checked against the device and the model.
    fn resolve(self, device: Device) -> Result<(Model, String, Preset, Arithmetic), Error> {
        let arithmetic = self.arithmetic(device)?;
        let (model, name, base) = resolve_model(self.model, self.weights, self.torchscript, self.preset);
        Ok((model, name, resolve_preset(base, self.size, self.mean, self.std), arithmetic))
    }

    fn arithmetic(&self, device: Device) -> Result<Arithmetic, Error> {
        let precision = if self.half { Precision::Fp16 } else { self.precision };
        let usage = |m: String| Err(Error::Usage(m));
        match precision {
            Precision::Fp16 if !device.is_cuda() => {
                return usage(format!(
                    "--precision fp16 (--half) needs a CUDA device, and this run is on {}; use --precision bf16 on the \
                     CPU, or --device cuda",
                    device_name(device)
                ))
            }
            Precision::Int8 if device != Device::Cpu => {
                return usage(format!(
                    "--precision int8 runs on the CPU, not {}; add --device cpu",
                    device_name(device)
                ))
            }
            Precision::Int8 if self.torchscript.is_some() => {
                return usage("--torchscript modules run in fp32, bf16 or fp16, not --precision int8".into())
            }
            Precision::Int8 if !self.model.id.spec().int8 => {
                return usage(format!(
                    "--precision int8: {} has no int8 form; use fp32 or bf16, or one of {}",
                    self.model.id.name(),
                    models::int8_names()
                ));
            }
            _ => {}
        }
        // What the device itself cannot run (bf16 where oneDNN has no bfloat16 convolutions), before any weights
        // are looked for.
        classify_image::check_precision(device, precision)?;
        if self.calibration.is_some() && precision != Precision::Int8 {
            return usage("--calibration is for --precision int8".into());
        }
        Ok(Arithmetic { precision, calibration: self.calibration.clone() })
    }
}

/// Whether weights may be fetched; shared by classifying and `weights download`.
#[derive(Debug, clap::Args)]
pub struct NetworkOpts {
    /// Never use the network: missing weights are an error instead of a download (also CLASSIFY_IMAGE_OFFLINE=1)
    #[arg(long)]
    offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage weights files: list the models, download ahead of time, verify the cache
    #[command(subcommand)]
    Weights(WeightsCommand),
    /// Show what libtorch sees: CUDA support in this build, GPUs
    Devices,
    /// Print a shell completion script: `classify-image completions bash > ~/.local/share/bash-completion/completions/classify-image`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `classify-image man | man -l -`
    Man,
    /// Measure accuracy on labelled images: top-1 and top-5, images per second, the most confused classes
    Eval(Box<EvalOpts>),
    /// Calibrate a model for --precision int8 on your own photos, and write the file --calibration reads
    Quantize(QuantizeOpts),
}

/// `classify-image quantize`.
#[derive(Debug, clap::Args)]
pub struct QuantizeOpts {
    /// Photos or folders of photos like those the model will classify (a few hundred are plenty) [default: the
    /// 100 built-in calibration photos]
    #[arg(value_name = "IMAGES")]
    pub images: Vec<PathBuf>,

    /// The model: one with an int8 form (VGG, AlexNet, ResNet, ResNeXt, Wide ResNet, RegNet X, MobileNet V2, MNASNet,
    /// EfficientNet-Lite)
    #[arg(short, long, value_name = "MODEL", default_value = DEFAULT_MODEL, value_parser = parse_model)]
    model: ModelArg,

    /// Weights file to calibrate instead of the official one
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,

    /// The preparation the photos get, as with classifying (seed or torchvision)
    #[arg(long, value_enum, default_value_t = PresetKind::Seed)]
    preset: PresetKind,

    /// Where to write the calibration (JSON)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    #[command(flatten)]
    network: NetworkOpts,

    /// No progress messages
    #[arg(short, long)]
    pub quiet: bool,
}

/// A checked `quantize` request.
#[derive(Debug)]
pub struct QuantizeRequest {
    pub images: Vec<PathBuf>,
    pub model: ModelId,
    pub weights: Option<PathBuf>,
    pub preset: Preset,
    pub output: PathBuf,
    pub fetch: Fetch,
    pub quiet: bool,
}

impl QuantizeOpts {
    pub fn resolve(self) -> Result<QuantizeRequest, Error> {
        let id = self.model.id;
        if !id.spec().int8 {
            return Err(Error::Usage(format!(
                "{} has no int8 form; -m takes one of {}",
                id.name(),
                models::int8_names()
            )));
        }
        let inputs: Vec<&Path> = self.images.iter().map(PathBuf::as_path).chain(self.weights.as_deref()).collect();
        sink::check_file_output(&self.output, &inputs)
            .map_err(|e| Error::Usage(format!("--output {}: {e}", self.output.display())))?;
        Ok(QuantizeRequest {
            images: self.images,
            model: id,
            weights: self.weights,
            preset: id.preset(self.preset),
            output: self.output,
            fetch: fetch(&self.network, self.quiet)?,
            quiet: self.quiet,
        })
    }
}

/// `classify-image eval`: the options of classifying that make sense for a labelled data set.
#[derive(Debug, clap::Args)]
pub struct EvalOpts {
    /// The labelled images: a folder with one subfolder per class, named by WordNet id (n01440764), label name
    /// (tench) or index, holding that class's images; or a CSV file of path,label rows (label the same way;
    /// paths relative to the CSV's folder; further columns ignored; a first row whose first field is path,
    /// image, file or filename is a header)
    #[arg(value_name = "DATA")]
    data: PathBuf,

    #[command(flatten)]
    model: ModelOpts,

    /// Class names, one per line, in the model's class order [default: the built-in ImageNet labels, which
    /// also take WordNet ids]
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,

    /// Images per forward pass
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch_size: u32,

    /// Where to run: auto (CUDA if available, else CPU), cpu, cuda or cuda:N
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    device: Device,

    /// The summary on stdout: text, or one JSON object
    #[arg(long, value_enum, default_value_t = crate::eval::Format::Text)]
    format: crate::eval::Format,

    /// Also write each image's result to FILE as CSV: image, true class, top-1 class and probability, top-5
    /// classes, error
    #[arg(long, value_name = "FILE")]
    per_image: Option<PathBuf>,

    #[command(flatten)]
    network: NetworkOpts,

    /// Print only the summary and errors: no progress bar or download messages
    #[arg(short, long)]
    quiet: bool,
}

/// A checked `eval` request.
#[derive(Debug)]
pub struct EvalRequest {
    pub data: PathBuf,
    pub model: Model,
    pub model_name: String,
    /// The preset's name, for the summary; `preset` is what it came to with --size/--mean/--std.
    pub preset_kind: PresetKind,
    pub preset: Preset,
    pub labels: LabelSource,
    pub device: Device,
    pub arithmetic: Arithmetic,
    pub batch_size: usize,
    pub fetch: Fetch,
    pub quiet: bool,
    pub format: crate::eval::Format,
    pub per_image: Option<PathBuf>,
}

impl EvalOpts {
    /// Checks everything that can be checked before the data set is read and the model loads.
    pub fn resolve(self) -> Result<EvalRequest, Error> {
        if let Some(path) = &self.per_image {
            sink::check_file_output(path, &[&self.data])
                .map_err(|e| Error::Usage(format!("--per-image {}: {e}", path.display())))?;
        }
        let preset_kind = self.model.preset;
        let (model, model_name, preset, arithmetic) = self.model.resolve(self.device)?;
        Ok(EvalRequest {
            data: self.data,
            model,
            model_name,
            preset_kind,
            preset,
            labels: self.labels.map_or(LabelSource::ImageNet, LabelSource::File),
            device: self.device,
            arithmetic,
            batch_size: self.batch_size as usize,
            fetch: fetch(&self.network, self.quiet)?,
            quiet: self.quiet,
            format: self.format,
            per_image: self.per_image,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum WeightsCommand {
    /// List every model (each architecture with each of its weights) with its file, size, published
    /// accuracy, input preparation, and where the file is
    List {
        /// One Markdown table row per architecture instead (the README's model table)
        #[arg(long)]
        markdown: bool,
    },
    /// Download the official weights of MODELs, or of every model with --all, into torchvision's cache
    Download {
        /// Every model that has a download URL
        #[arg(long, conflicts_with = "models")]
        all: bool,
        #[arg(value_name = "MODEL", value_parser = parse_model)]
        models: Vec<ModelArg>,
        #[command(flatten)]
        network: NetworkOpts,
        /// No download messages or progress bars
        #[arg(short, long)]
        quiet: bool,
    },
    /// Check the SHA-256 of the weights files of MODELs (or of every model whose file is present)
    Verify {
        #[arg(value_name = "MODEL", value_parser = parse_model)]
        models: Vec<ModelArg>,
    },
}

/// The model when none is named: the original's.
pub const DEFAULT_MODEL: &str = "vgg16";

/// A model as named on the command line: the registry entry, and the name the user gave (the original prints it).
#[derive(Debug, Clone)]
pub struct ModelArg {
    pub id: ModelId,
    pub given: String,
}

fn parse_model(name: &str) -> Result<ModelArg, String> {
    match ModelId::from_name(name) {
        Some(id) => Ok(ModelArg { id, given: name.to_string() }),
        None => Err(unknown_model(name)),
    }
}

/// Why `name` is no model: a tag the architecture does not have, or no architecture of that name.
fn unknown_model(name: &str) -> String {
    let arch = name.split_once('.').map_or(name, |(arch, _)| arch);
    match ModelId::from_name(&arch.strip_suffix("_Weights").map_or(arch.to_string(), str::to_lowercase)) {
        Some(id) => {
            let tags: Vec<&str> = id.spec().weights.iter().map(|w| w.tag).collect();
            format!("{} has no weights of that name; its weights are {}", id.spec().name, tags.join(", "))
        }
        None => "unknown model; the original's are vgg16 vgg19 inception densenet resnet, and `classify-image \
                 weights list` lists the zoo (efficientnet_lite0 works offline)"
            .into(),
    }
}

fn parse_top_k(arg: &str) -> Result<usize, String> {
    match arg.parse::<i64>() {
        Ok(k) if k >= 1 => Ok(k as usize),
        Ok(_) => Err("give at least 1 prediction per image".into()),
        Err(_) => Err("give a whole number of predictions, such as 5".into()),
    }
}

fn triple(arg: &str) -> Result<[f64; 3], String> {
    let values: Vec<f64> =
        arg.split(',').map(|v| v.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    match values.as_slice() {
        [r, g, b] if values.iter().all(|v| v.is_finite()) => Ok([*r, *g, *b]),
        _ => Err("give three comma-separated numbers, e.g. 0.485,0.456,0.406".into()),
    }
}

fn parse_mean(arg: &str) -> Result<[f64; 3], String> {
    triple(arg)
}

fn parse_std(arg: &str) -> Result<[f64; 3], String> {
    let std = triple(arg)?;
    if std.contains(&0.0) {
        return Err("a standard deviation of 0 would divide by zero".into());
    }
    Ok(std)
}

fn parse_device(arg: &str) -> Result<Device, String> {
    let cuda_count = tch::Cuda::device_count();
    let n = match arg {
        "auto" => return Ok(classify_image::config::default_device()),
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        other => {
            other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()).ok_or("use auto, cpu, cuda or cuda:N")?
        }
    };
    if (n as i64) < cuda_count {
        Ok(Device::Cuda(n))
    } else {
        Err(format!(
            "libtorch sees {cuda_count} CUDA device(s) (no GPU, no driver, or a build without the cuda feature); use \
             --device cpu"
        ))
    }
}

/// A device as the option takes it: `cpu`, `cuda:0`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Where annotated images go.
#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    /// Nowhere: only the report on stdout.
    None,
    /// One file, for one image or a video.
    File(PathBuf),
    /// Copies under their own names in a folder.
    Dir(PathBuf),
}

/// What to classify.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Images(Vec<PathBuf>),
    Video(PathBuf),
    Camera(i32),
}

impl Source {
    /// One image file (or stdin), not a folder: the original's case, and what `--output` takes.
    fn is_one_image(&self) -> bool {
        matches!(self, Source::Images(paths) if paths.len() == 1 && !paths[0].is_dir())
    }
}

/// What classifies: a zoo model (with its official weights, or a file of weights for it), or a TorchScript
/// module that carries its own architecture.
#[derive(Debug)]
pub enum Model {
    Zoo { id: ModelId, weights: Option<PathBuf> },
    TorchScript(PathBuf),
}

/// Whether a window shows the annotated images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    No,
    /// Asked for with --show: the display was checked before anything ran.
    Asked,
    /// The original's default for one image with nowhere to write it: the display is checked after the
    /// predictions are printed, so that a headless run still shows them.
    Default,
}

/// A checked request.
#[derive(Debug)]
pub struct Request {
    pub source: Source,
    /// The original's exact behaviour: one image file, text output, the [INFO] narration, and a bad image fails
    /// the run instead of being reported in place.
    pub seed: bool,
    pub model: Model,
    /// The model's name as the user gave it (the original prints it), or the TorchScript file's name.
    pub model_name: String,
    pub preset: Preset,
    pub labels: LabelSource,
    pub device: Device,
    pub arithmetic: Arithmetic,
    pub sink: Sink,
    pub window: Window,
    /// How the label is drawn on annotated images and frames.
    pub caption: Style,
    pub top_k: usize,
    pub format: Format,
    pub batch_size: usize,
    /// With --shard: the images of this shard only.
    pub shard: Option<Shard>,
    /// With --resume: the file of records that this run skips and appends to.
    pub resume: Option<PathBuf>,
    pub every: u32,
    pub fetch: Fetch,
    /// Results and errors only.
    pub quiet: bool,
    /// Grad-CAM heatmaps on the annotated images.
    pub explain: Option<Explain>,
}

/// Which class Grad-CAM explains.
#[derive(Debug, Clone, PartialEq)]
pub enum Explain {
    /// The most likely one, image by image.
    Top1,
    /// The one named on the command line, found in the labels once they are loaded.
    Class(String),
}

impl Opts {
    /// Checks everything that can be checked before the model loads, inputs first.
    pub fn resolve(self) -> Result<Request, Error> {
        let source = resolve_source(self.paths, self.image, self.video, self.camera)?;
        let (shard, resume) = resolve_split(self.shard.as_deref(), self.resume, &source, self.output.is_some())?;
        let split = shard.is_some() || resume.is_some();
        let seed = is_seed(&source, self.format, split);
        let labels = self.labels.map_or(LabelSource::ImageNet, LabelSource::File);
        check_top_k(self.top_k, &labels)?;
        // With the built-in labels the class to explain is known before the model loads; a label file is read
        // after loading, with the model's class count.
        if let (Some(class), LabelSource::ImageNet) = (&self.explain_class, &labels) {
            explained_class(class, &classify_image::Labels::imagenet(), true)?;
        }
        let sink = resolve_sink(self.output, self.output_dir, &source)?;
        let (model, model_name, preset, arithmetic) = self.model.resolve(self.device)?;
        if arithmetic.precision == Precision::Int8 && (self.explain || self.explain_class.is_some()) {
            return Err(Error::Usage(
                "--explain needs gradients, which an int8 network has not; use --precision fp32 or bf16".into(),
            ));
        }
        let window = resolve_window(self.show, &sink, &source, self.format, split)?;
        Ok(Request {
            source,
            seed,
            model,
            model_name,
            preset,
            labels,
            device: self.device,
            arithmetic,
            sink,
            window,
            caption: self.caption,
            top_k: self.top_k,
            format: self.format,
            batch_size: self.batch_size as usize,
            shard,
            resume,
            every: self.every,
            fetch: fetch(&self.network, self.quiet)?,
            quiet: self.quiet,
            explain: match (self.explain, self.explain_class) {
                (_, Some(class)) => Some(Explain::Class(class)),
                (true, None) => Some(Explain::Top1),
                (false, None) => None,
            },
        })
    }
}

/// `--offline` and `-q` as the weights resolver takes them, with the `CLASSIFY_IMAGE_*` environment variables
/// (offline mode, mirror, trusted checksums, timeout).
pub fn fetch(network: &NetworkOpts, quiet: bool) -> Result<Fetch, Error> {
    Fetch::from_env(network.offline, quiet)
}

fn resolve_source(
    paths: Vec<PathBuf>,
    image: Vec<PathBuf>,
    video: Option<PathBuf>,
    camera: Option<i32>,
) -> Result<Source, Error> {
    let source = match (video, camera) {
        (Some(video), _) => Source::Video(video),
        (None, Some(index)) => Source::Camera(index),
        (None, None) => Source::Images(paths.into_iter().chain(image).collect()),
    };
    if let Source::Images(paths) = &source {
        let stdin = paths.iter().filter(|p| is_stdin(p)).count();
        if stdin > 1 || (stdin == 1 && paths.len() > 1) {
            return Err(Error::Usage("- (stdin) holds one image; give it alone".into()));
        }
    }
    Ok(source)
}

/// `-` names standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A run split into shards or resumed from a file is a list of images, never the original's case, even with one.
fn is_seed(source: &Source, format: Format, split: bool) -> bool {
    source.is_one_image() && format == Format::Text && !split
}

/// `--shard` (its index from the environment with `auto`) and `--resume`: for images and folders, which have
/// names to place in a shard and to record, and for runs that write no single `--output`.
fn resolve_split(
    shard: Option<&str>,
    resume: Option<PathBuf>,
    source: &Source,
    output: bool,
) -> Result<(Option<Shard>, Option<PathBuf>), Error> {
    let flag = match (shard, &resume) {
        (None, None) => return Ok((None, None)),
        (Some(_), None) => "--shard",
        (None, Some(_)) => "--resume",
        (Some(_), Some(_)) => "--shard and --resume",
    };
    match source {
        Source::Video(_) | Source::Camera(_) => {
            return Err(Error::Usage(format!(
                "{flag}: images and folders only; a video's or a camera's frames are one stream, classified from \
                 its start"
            )))
        }
        Source::Images(paths) if paths.iter().any(|p| is_stdin(p)) => {
            return Err(Error::Usage(format!(
                "{flag}: - (stdin) has no name to place or record; give files or folders"
            )))
        }
        Source::Images(_) if output => {
            return Err(Error::Usage(format!("--output writes one image; with {flag} use --output-dir DIR")))
        }
        Source::Images(_) => {}
    }
    let shard = shard.map(|arg| shard::resolve(arg, &shard::Env::from_process()).map_err(Error::Usage)).transpose()?;
    Ok((shard, resume))
}

/// Fewer predictions than classes. With the built-in labels that is known before the model loads; a label
/// file is checked against the model first, after loading, since a wrong file is the likelier mistake.
fn check_top_k(top_k: usize, labels: &LabelSource) -> Result<(), Error> {
    match labels {
        LabelSource::ImageNet => top_k_fits(top_k, 1000),
        LabelSource::File(_) => Ok(()),
    }
}

/// The one class that `--explain-class` names ([`classify_image::Labels::class`]); WordNet ids with the
/// built-in ImageNet labels (`wnids`).
pub fn explained_class(name: &str, labels: &classify_image::Labels, wnids: bool) -> Result<usize, Error> {
    labels.class(name, wnids).map_err(|why| Error::Usage(format!("--explain-class {why}")))
}

/// `-k` against the number of classes the labels name.
pub fn top_k_fits(top_k: usize, classes: usize) -> Result<(), Error> {
    if top_k > classes {
        return Err(Error::Usage(format!("--top-k {top_k}: the labels name only {classes} classes")));
    }
    Ok(())
}

fn resolve_sink(output: Option<PathBuf>, output_dir: Option<PathBuf>, source: &Source) -> Result<Sink, Error> {
    match (output, output_dir) {
        (Some(path), _) => {
            let image = match source {
                Source::Images(_) if source.is_one_image() => true,
                Source::Images(_) => {
                    return Err(Error::Usage("--output takes one image; for several, use --output-dir DIR".into()))
                }
                Source::Video(_) | Source::Camera(_) => false,
            };
            let inputs: Vec<&Path> = match source {
                Source::Images(paths) => paths.iter().map(PathBuf::as_path).collect(),
                Source::Video(path) => vec![path.as_path()],
                Source::Camera(_) => vec![],
            };
            sink::check_output(&path, &inputs, image)?;
            Ok(Sink::File(path))
        }
        (None, Some(dir)) => match source {
            Source::Images(paths) if paths.iter().any(|p| is_stdin(p)) => {
                Err(Error::Usage("an image from stdin has no name to write under --output-dir; use -o FILE".into()))
            }
            Source::Images(_) => Ok(Sink::Dir(dir)),
            _ => Err(Error::Usage("--output-dir is for images; a video goes to --output FILE".into())),
        },
        (None, None) => Ok(Sink::None),
    }
}

fn resolve_model(
    model: ModelArg,
    weights: Option<PathBuf>,
    torchscript: Option<PathBuf>,
    kind: PresetKind,
) -> (Model, String, Preset) {
    match torchscript {
        Some(path) => {
            let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
            let base = match kind {
                PresetKind::Seed => models::SEED,
                PresetKind::Torchvision => Preset { resize: Some(256), ..models::SEED },
            };
            (Model::TorchScript(path), name, base)
        }
        None => (Model::Zoo { id: model.id, weights }, model.given, model.id.preset(kind)),
    }
}

/// The model's preparation with --size/--mean/--std applied; --size sets the crop, and torchvision's resize
/// keeps its ratio to the crop (256/224).
fn resolve_preset(base: Preset, size: Option<i64>, mean: Option<[f64; 3]>, std: Option<[f64; 3]>) -> Preset {
    let size = size.unwrap_or(base.size);
    Preset {
        size,
        resize: base.resize.map(|r| r * size / base.size),
        mean: mean.unwrap_or(base.mean),
        std: std.unwrap_or(base.std),
        ..base
    }
}

fn resolve_window(show: bool, sink: &Sink, source: &Source, format: Format, split: bool) -> Result<Window, Error> {
    if show {
        sink::check_display()?;
        return Ok(Window::Asked);
    }
    // The original's default: one image (or a video) with nowhere to write it goes to a window.
    let one = (source.is_one_image() && !split) || !matches!(source, Source::Images(_));
    Ok(if *sink == Sink::None && format == Format::Text && one { Window::Default } else { Window::No })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Opts, clap::Error> {
        Opts::try_parse_from(std::iter::once("classify-image").chain(args.iter().copied()))
    }

    #[test]
    fn positional_paths_and_dash_i_are_the_same_source() {
        let a = parse(&["photo.jpg"]).unwrap().resolve().unwrap();
        let b = parse(&["-i", "photo.jpg"]).unwrap().resolve().unwrap();
        assert_eq!(a.source, Source::Images(vec!["photo.jpg".into()]));
        assert_eq!(a.source, b.source);
        assert!(a.seed && b.seed);
        let both = parse(&["a.jpg", "-i", "b.jpg"]).unwrap().resolve().unwrap();
        assert_eq!(both.source, Source::Images(vec!["a.jpg".into(), "b.jpg".into()]));
        assert!(!both.seed);
    }

    #[test]
    fn values_are_typed_at_parse_time() {
        let opts = parse(&["x.jpg", "-m", "resnet", "--device", "cpu", "--preset", "torchvision"]).unwrap();
        assert_eq!(opts.model.model.id, ModelId::from_name("resnet50.IMAGENET1K_V1").unwrap(), "the original's alias");
        assert_eq!(opts.model.model.given, "resnet");
        assert_eq!(opts.device, Device::Cpu);
        assert_eq!(opts.model.preset, PresetKind::Torchvision);
        for bad in [
            ["-m", "resnet51"],
            ["-m", "resnet50.V9"],
            ["-k", "0"],
            ["-k", "-1"],
            ["--device", "tpu"],
            ["--std", "1,0,1"],
        ] {
            let err = parse(&["x.jpg", bad[0], bad[1]]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad:?}: {err}");
        }
        assert!(parse(&["x.jpg", "--device", "cuda:7"]).unwrap_err().to_string().contains("--device cpu"));
    }

    #[test]
    fn the_caption_is_the_seeds_unless_asked() {
        let caption = |args: &[&str]| parse(args).unwrap().resolve().unwrap().caption;
        assert_eq!(caption(&["x.jpg"]), Style::Seed);
        assert_eq!(caption(&["x.jpg", "--caption", "box"]), Style::Box);
        assert_eq!(caption(&["d", "--caption", "bars", "--output-dir", "o"]), Style::Bars);
        assert_eq!(parse(&["x.jpg", "--caption", "red"]).unwrap_err().kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn the_original_case_is_decided_once() {
        let seed = |args: &[&str]| parse(args).unwrap().resolve().unwrap().seed;
        assert!(seed(&["x.jpg"]));
        assert!(!seed(&["x.jpg", "--format", "json"]));
        assert!(!seed(&["x.jpg", "y.jpg"]));
        assert!(!seed(&["."]), "a folder");
        let req = parse(&["x.jpg"]).unwrap().resolve().unwrap();
        assert_eq!(req.window, Window::Default, "no --output: a window, checked after the predictions");
        let req = parse(&["x.jpg", "-o", "y.png"]).unwrap().resolve().unwrap();
        assert_eq!((req.window, req.sink), (Window::No, Sink::File("y.png".into())));
    }

    #[test]
    fn top_k_is_checked_against_the_labels_before_loading() {
        let err = parse(&["x.jpg", "-k", "5000"]).unwrap().resolve().unwrap_err();
        assert!(err.to_string().contains("--top-k 5000") && err.to_string().contains("1000 classes"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let labels = dir.path().join("labels.txt");
        std::fs::write(&labels, "a\nb\nc\n").unwrap();
        let l = labels.to_str().unwrap();
        assert!(parse(&["x.jpg", "--labels", l, "-k", "4"]).unwrap().resolve().is_ok(), "checked after loading");
        assert!(top_k_fits(3, 3).is_ok() && top_k_fits(4, 3).is_err());
    }

    #[test]
    fn stdin_is_one_image_with_no_name() {
        assert!(parse(&["-"]).unwrap().resolve().unwrap().seed);
        assert!(parse(&["-", "x.jpg"]).unwrap().resolve().is_err());
        assert!(parse(&["-", "--output-dir", "d"]).unwrap().resolve().is_err());
    }

    #[test]
    fn presets_follow_size_mean_and_std() {
        let base = Preset { size: 224, resize: Some(256), mean: [0.5; 3], std: [0.5; 3], ..models::SEED };
        let p = resolve_preset(base, Some(448), None, Some([0.2, 0.3, 0.4]));
        assert_eq!((p.size, p.resize, p.mean, p.std), (448, Some(512), [0.5; 3], [0.2, 0.3, 0.4]));
        assert_eq!(resolve_preset(models::SEED, None, None, None), models::SEED);
    }

    #[test]
    fn output_rules() {
        assert!(parse(&["a.jpg", "b.jpg", "-o", "x.png"]).unwrap().resolve().is_err());
        assert!(parse(&["--video", "v.mp4", "--output-dir", "d"]).unwrap().resolve().is_err());
        let req = parse(&["a.jpg", "b.jpg", "--output-dir", "d"]).unwrap().resolve().unwrap();
        assert_eq!((req.sink, req.window), (Sink::Dir("d".into()), Window::No));
        // A missing folder is created, for -o as for --output-dir.
        assert!(parse(&["a.jpg", "-o", "no/such/dir/x.png"]).unwrap().resolve().is_ok());
    }

    #[test]
    fn subcommands_take_only_their_own_options() {
        assert!(parse(&["devices"]).is_ok());
        assert!(parse(&["devices", "--offline"]).is_err());
        assert!(parse(&["devices", "-q"]).is_err());
        assert!(parse(&["weights", "download", "--offline", "-q", "resnet18"]).is_ok());
        assert!(parse(&["completions", "bash"]).is_ok());
        assert!(parse(&["eval", "data", "-m", "efficientnet_lite0", "--offline", "-q", "--format", "json"]).is_ok());
        assert!(parse(&["eval", "data", "--format", "csv"]).is_err(), "text or json");
        assert!(parse(&["eval", "data", "-k", "3"]).is_err(), "top-1 and top-5, always");
        assert!(parse(&["eval"]).is_err(), "DATA is required");
    }

    #[test]
    fn eval_takes_the_preparation_and_checks_its_outputs_first() {
        let Some(Command::Eval(opts)) =
            parse(&["eval", "d", "-m", "efficientnet_lite0", "--preset", "torchvision", "--size", "448"])
                .unwrap()
                .command
        else {
            panic!("eval is a subcommand")
        };
        let req = opts.resolve().unwrap();
        assert_eq!((req.preset.size, req.preset.resize, req.preset.mean), (448, Some(512), [0.5; 3]));
        assert_eq!(req.model_name, "efficientnet_lite0");
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().to_str().unwrap();
        let Some(Command::Eval(opts)) = parse(&["eval", "d", "--per-image", folder]).unwrap().command else {
            panic!("eval is a subcommand")
        };
        let err = opts.resolve().unwrap_err().to_string();
        assert!(err.starts_with("--per-image ") && err.contains("directory"), "{err}");
    }

    #[test]
    fn shards_and_resume_take_images_as_a_list_even_one() {
        let req = parse(&["x.jpg", "--shard", "2/3"]).unwrap().resolve().unwrap();
        assert_eq!(req.shard.map(|s| s.to_string()).as_deref(), Some("2/3"));
        assert!(!req.seed && req.window == Window::No, "not the original's case");
        let req = parse(&["x.jpg", "--resume", "r.jsonl"]).unwrap().resolve().unwrap();
        assert_eq!((req.seed, req.window, req.resume), (false, Window::No, Some("r.jsonl".into())));
        for (args, needle) in [
            (&["--video", "v.mp4", "--resume", "r"][..], "--resume: images and folders only"),
            (&["--camera", "0", "--shard", "1/2"], "--shard: images and folders only"),
            (&["-", "--resume", "r"], "(stdin) has no name"),
            (
                &["x.jpg", "-o", "y.png", "--shard", "1/2", "--resume", "r"],
                "with --shard and --resume use --output-dir",
            ),
            (&["x.jpg", "--shard", "3/2"], "--shard 3/2: there are only 2 shards"),
        ] {
            let err = parse(args).unwrap().resolve().unwrap_err();
            assert!(matches!(err, Error::Usage(_)) && err.to_string().contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn device_names_are_the_options_spelling() {
        assert_eq!(device_name(Device::Cpu), "cpu");
        assert_eq!(device_name(Device::Cuda(1)), "cuda:1");
    }
}
